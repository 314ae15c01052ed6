// SPDX-License-Identifier: Apache-2.0
//
// icmpEcho(nsPath, src, dst, timeoutMs, sequence) -> Promise<boolean>: one ICMP (or ICMPv6) echo
// request from `src` (may be "": the kernel's choice) to `dst`, sent from inside the netns at
// nsPath; resolves true if the matching echo reply arrived within timeoutMs, false if it did not
// or the kernel refused to send (no route, link down, address gone). Rejects (Error with errno,
// code, syscall) only when the netns or the socket cannot be opened.
//
// The socket is an ICMP datagram socket (SOCK_DGRAM + IPPROTO_ICMP/ICMPV6; the kernel picks the
// echo id and hands this socket only its own replies), which needs the caller's gid inside the
// netns's net.ipv4.ping_group_range; when that is refused, a raw ICMP socket (root), whose replies
// are matched by id and sequence. Everything — setns, socket, send, wait — runs on a detached
// throwaway pthread (never a Node or libuv pool thread, so a slow answer blocks nothing); the
// result comes back to the JS thread through a thread-safe function.
#include <napi.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <string>

namespace {

struct EchoJob {
  std::string nsPath, src, dst;
  int timeoutMs = 1000;
  uint16_t seq = 0;
  bool answered = false;
  int err = 0;
  const char* step = "";
  Napi::Promise::Deferred deferred;
  Napi::ThreadSafeFunction done;
  explicit EchoJob(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
};

// A socket address for `ip` (IPv4 or IPv6) with port 0; false if `ip` is neither.
bool ParseAddress(const std::string& ip, sockaddr_storage& out, socklen_t& len) {
  memset(&out, 0, sizeof out);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out);
  if (inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    len = sizeof *v4;
    return true;
  }
  if (inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    len = sizeof *v6;
    return true;
  }
  return false;
}

long NowMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

// Whether datagram `buf` is the reply to our echo. A datagram socket gets only its own replies
// (ICMP header first); a raw one gets every ICMP packet (IPv4: after the IP header).
bool IsOurReply(const uint8_t* buf, ssize_t n, int family, bool raw, uint16_t id, uint16_t seq) {
  if (raw && family == AF_INET) {
    if (n < static_cast<ssize_t>(sizeof(iphdr))) return false;
    size_t hl = reinterpret_cast<const iphdr*>(buf)->ihl * 4u;
    buf += hl;
    n -= static_cast<ssize_t>(hl);
  }
  if (n < 8) return false;
  uint8_t reply = family == AF_INET ? uint8_t{ICMP_ECHOREPLY} : uint8_t{ICMP6_ECHO_REPLY};
  uint16_t gotId = static_cast<uint16_t>(buf[4] << 8 | buf[5]);
  uint16_t gotSeq = static_cast<uint16_t>(buf[6] << 8 | buf[7]);
  return buf[0] == reply && gotSeq == seq && (!raw || gotId == id);
}

// The 16-bit ones'-complement checksum of an ICMPv4 message (raw sockets; the kernel fills it in
// for datagram sockets and for ICMPv6).
uint16_t Checksum(const uint8_t* p, size_t n) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < n; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (n & 1) sum += static_cast<uint32_t>(p[n - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

// Opens the echo socket (datagram, else raw) for `family`; sets `raw`. -1 with errno on failure.
int OpenEchoSocket(int family, bool& raw) {
  int proto = family == AF_INET ? int{IPPROTO_ICMP} : int{IPPROTO_ICMPV6};
  raw = false;
  int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, proto);
  if (fd >= 0 || (errno != EACCES && errno != EPERM)) return fd;
  raw = true;
  return socket(family, SOCK_RAW | SOCK_CLOEXEC, proto);
}

// Waits for our reply until the deadline; true if it came.
bool AwaitReply(int fd, int family, bool raw, uint16_t id, uint16_t seq, long deadline) {
  uint8_t buf[2048];
  for (long left = deadline - NowMs(); left > 0; left = deadline - NowMs()) {
    pollfd p{fd, POLLIN, 0};
    int rc = poll(&p, 1, static_cast<int>(left));
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) return false;
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) {
      // An ICMP error for our echo (unreachable) arrives as a socket error on datagram sockets.
      if (errno == EAGAIN || errno == EINTR) continue;
      return false;
    }
    if (IsOurReply(buf, n, family, raw, id, seq)) return true;
  }
  return false;
}

// The echo itself, on a thread already inside the netns. Sets job.answered, or job.err/step.
void Echo(EchoJob& job) {
  sockaddr_storage dst{}, src{};
  socklen_t dstLen = 0, srcLen = 0;
  if (!ParseAddress(job.dst, dst, dstLen) || (!job.src.empty() && !ParseAddress(job.src, src, srcLen)) ||
      (!job.src.empty() && src.ss_family != dst.ss_family)) {
    job.err = EINVAL;
    job.step = "icmpEcho (bad address)";
    return;
  }
  long deadline = NowMs() + job.timeoutMs;
  bool raw = false;
  int fd = OpenEchoSocket(dst.ss_family, raw);
  if (fd < 0) {
    job.err = errno;
    job.step = "socket";
    return;
  }
  uint16_t id = static_cast<uint16_t>(getpid() ^ (reinterpret_cast<uintptr_t>(&job) >> 4));
  uint8_t msg[16] = {dst.ss_family == AF_INET ? uint8_t{ICMP_ECHO} : uint8_t{ICMP6_ECHO_REQUEST}, 0, 0, 0,
                     static_cast<uint8_t>(id >> 8), static_cast<uint8_t>(id), static_cast<uint8_t>(job.seq >> 8),
                     static_cast<uint8_t>(job.seq), 'n', 's', 'm', '-', 'l', 'i', 'v', 'e'};
  if (raw && dst.ss_family == AF_INET) {
    uint16_t c = Checksum(msg, sizeof msg);
    msg[2] = static_cast<uint8_t>(c >> 8);
    msg[3] = static_cast<uint8_t>(c);
  }
  bool sent = (srcLen == 0 || bind(fd, reinterpret_cast<sockaddr*>(&src), srcLen) == 0) &&
              sendto(fd, msg, sizeof msg, 0, reinterpret_cast<sockaddr*>(&dst), dstLen) == sizeof msg;
  // Not sent (address gone, no route, link down): simply not answered.
  job.answered = sent && AwaitReply(fd, dst.ss_family, raw, id, job.seq, deadline);
  close(fd);
}

void Settle(Napi::Env env, Napi::Function, EchoJob* job) {
  if (env != nullptr) {
    Napi::HandleScope scope(env);
    if (job->err != 0) {
      const char* name = strerrorname_np(job->err);
      Napi::Error e = Napi::Error::New(env, std::string(job->step) + ": " + strerror(job->err));
      e.Set("errno", Napi::Number::New(env, job->err));
      e.Set("code", Napi::String::New(env, name ? name : "EUNKNOWN"));
      e.Set("syscall", Napi::String::New(env, job->step));
      job->deferred.Reject(e.Value());
    } else {
      job->deferred.Resolve(Napi::Boolean::New(env, job->answered));
    }
  }
  job->done.Release();
  delete job;
}

void* EchoThread(void* arg) {
  auto* job = static_cast<EchoJob*>(arg);
  int nsfd = open(job->nsPath.c_str(), O_RDONLY | O_CLOEXEC);
  if (nsfd < 0) {
    job->err = errno;
    job->step = "open netns";
  } else {
    if (setns(nsfd, CLONE_NEWNET) != 0) {
      job->err = errno;
      job->step = "setns";
    }
    close(nsfd);
  }
  if (job->err == 0) Echo(*job);
  // Settle on the JS thread; the thread ends here, taking its netns switch with it.
  napi_status s =
      job->done.BlockingCall(job, [](Napi::Env env, Napi::Function fn, EchoJob* j) { Settle(env, fn, j); });
  if (s != napi_ok) {  // Node is shutting down: nobody waits for the answer
    job->done.Release();
    delete job;
  }
  return nullptr;
}

Napi::Value IcmpEcho(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsString() || !info[2].IsString() || !info[3].IsNumber() ||
      !info[4].IsNumber()) {
    Napi::TypeError::New(env, "icmpEcho(nsPath, src, dst, timeoutMs, sequence)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto* job = new EchoJob(env);
  job->nsPath = info[0].As<Napi::String>();
  job->src = info[1].As<Napi::String>();
  job->dst = info[2].As<Napi::String>();
  job->timeoutMs = info[3].As<Napi::Number>().Int32Value();
  if (job->timeoutMs < 1) job->timeoutMs = 1;
  job->seq = static_cast<uint16_t>(info[4].As<Napi::Number>().Uint32Value());
  Napi::Promise promise = job->deferred.Promise();
  job->done = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                            "icmpEcho", 0, 1);
  pthread_t t;
  int rc = pthread_create(&t, nullptr, EchoThread, job);
  if (rc != 0) {
    job->err = rc;
    job->step = "pthread_create";
    Settle(env, Napi::Function(), job);
    return promise;
  }
  pthread_detach(t);
  return promise;
}

}  // namespace

// Called from nsnl.cc's module init.
void RegisterIcmp(Napi::Env env, Napi::Object exports) {
  exports.Set("icmpEcho", Napi::Function::New(env, IcmpEcho));
}
