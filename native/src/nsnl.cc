// SPDX-License-Identifier: Apache-2.0
//
// nsnl: the few system calls Node cannot make, for src/kernel/.
//
//  - openNetlink(nsPath, protocol, rcvTimeoutMs) -> Promise<fd>: an AF_NETLINK socket created inside
//    the netns at nsPath. A netlink socket keeps the netns it was created in for its whole life.
//  - request(fd, Buffer) -> Promise<Buffer[]>: sends one netlink message and receives until the
//    reply to its sequence number ends (NLMSG_DONE, NLMSG_ERROR, or a message without NLM_F_MULTI).
//    Messages with another sequence number (late replies to an earlier, timed-out request) are
//    dropped. One outstanding request per fd: the TypeScript side serializes requests per socket.
//  - writeFile(nsPath, path, Buffer) -> Promise<void>: open+write+close inside the netns (per-netns
//    sysctls: /proc/sys/net resolves against the netns of the thread that opens it).
//  - createTun(nsPath, name, tap) -> Promise<void>: a persistent TUN/TAP device in that netns.
//  - stat(path) -> { dev: bigint, ino: bigint }: netns identity of a path.
//  - close(fd).
//  - icmpEcho(nsPath, src, dst, timeoutMs, sequence) -> Promise<boolean>: see icmp.cc.
//  - unix sockets passing descriptors (unixListen, unixConnect, recvFds, sendFd, pollFd…): see fdpass.cc.
//
// Every setns() happens on a throwaway pthread that exits right after, never on a Node thread
// (neither the JS thread nor a libuv pool thread). Errors reject/throw an Error carrying
// `errno` (positive), `code` ("ENOENT") and `syscall` (the failed step).
#include <napi.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

void RegisterIcmp(Napi::Env env, Napi::Object exports);    // icmp.cc
void RegisterFdPass(Napi::Env env, Napi::Object exports);  // fdpass.cc

namespace {

struct Failure {
  int err = 0;
  const char* step = "";
};

Napi::Error MakeError(Napi::Env env, const Failure& f) {
  const char* name = strerrorname_np(f.err);
  std::string msg = std::string(f.step) + ": " + strerror(f.err);
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("errno", Napi::Number::New(env, f.err));
  e.Set("code", Napi::String::New(env, name ? name : "EUNKNOWN"));
  e.Set("syscall", Napi::String::New(env, f.step));
  return e;
}

struct NsJob {
  std::string nsPath;
  std::function<Failure()> fn;
  Failure result;
};

void* NsThread(void* arg) {
  NsJob* job = static_cast<NsJob*>(arg);
  int nsfd = open(job->nsPath.c_str(), O_RDONLY | O_CLOEXEC);
  if (nsfd < 0) {
    job->result = {errno, "open netns"};
    return nullptr;
  }
  int rc = setns(nsfd, CLONE_NEWNET);
  int err = errno;
  close(nsfd);
  if (rc != 0) {
    job->result = {err, "setns"};
    return nullptr;
  }
  job->result = job->fn();
  return nullptr;  // the thread ends here, taking its netns switch with it
}

// Runs fn on a fresh thread that has joined the netns at nsPath; blocks until it is done.
Failure RunInNetns(const std::string& nsPath, std::function<Failure()> fn) {
  NsJob job{nsPath, std::move(fn), {}};
  pthread_t t;
  int rc = pthread_create(&t, nullptr, NsThread, &job);
  if (rc != 0) return {rc, "pthread_create"};
  pthread_join(t, nullptr);
  return job.result;
}

// An AsyncWorker that settles a promise: Execute() fills `failure` or the subclass's result.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  explicit PromiseWorker(Napi::Env env) : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  virtual Napi::Value Result(Napi::Env env) { return env.Undefined(); }
  void OnOK() override {
    Napi::HandleScope scope(Env());
    if (failure_.err != 0) {
      deferred_.Reject(MakeError(Env(), failure_).Value());
    } else {
      deferred_.Resolve(Result(Env()));
    }
  }
  Failure failure_;

 private:
  Napi::Promise::Deferred deferred_;
};

class RequestWorker : public PromiseWorker {
 public:
  RequestWorker(Napi::Env env, int fd, const uint8_t* data, size_t len)
      : PromiseWorker(env), fd_(fd), msg_(data, data + len) {}
  void Execute() override {
    if (msg_.size() < sizeof(nlmsghdr)) {
      failure_ = {EINVAL, "request (short message)"};
      return;
    }
    uint32_t seq = reinterpret_cast<const nlmsghdr*>(msg_.data())->nlmsg_seq;
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    ssize_t n;
    do {
      n = sendto(fd_, msg_.data(), msg_.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      failure_ = {errno, "sendto"};
      return;
    }
    static thread_local std::vector<uint8_t> buf(65536);
    for (bool done = false; !done;) {
      n = recv(fd_, buf.data(), buf.size(), MSG_TRUNC);
      if (n < 0) {
        if (errno == EINTR) continue;
        failure_ = {errno, errno == EAGAIN ? "recv (timed out)" : "recv"};
        return;
      }
      if (static_cast<size_t>(n) > buf.size()) {
        failure_ = {EMSGSIZE, "recv (datagram truncated)"};
        return;
      }
      std::vector<uint8_t> mine;  // the messages of this datagram that answer our request
      int len = static_cast<int>(n);
      for (auto* h = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
        if (h->nlmsg_seq != seq) continue;
        auto* p = reinterpret_cast<uint8_t*>(h);
        mine.insert(mine.end(), p, p + NLMSG_ALIGN(h->nlmsg_len));
        if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR || !(h->nlmsg_flags & NLM_F_MULTI)) {
          done = true;
        }
      }
      if (!mine.empty()) replies_.push_back(std::move(mine));
    }
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Array out = Napi::Array::New(env, replies_.size());
    for (size_t i = 0; i < replies_.size(); i++) {
      out.Set(i, Napi::Buffer<uint8_t>::Copy(env, replies_[i].data(), replies_[i].size()));
    }
    return out;
  }

 private:
  int fd_;
  std::vector<uint8_t> msg_;
  std::vector<std::vector<uint8_t>> replies_;
};

// A job run on a throwaway thread inside a netns; resolves with `out` (an fd) if it set one, else undefined.
class NsWorker : public PromiseWorker {
 public:
  using Fn = std::function<Failure(int& out)>;
  NsWorker(Napi::Env env, std::string ns, Fn fn) : PromiseWorker(env), ns_(std::move(ns)), fn_(std::move(fn)) {}
  void Execute() override {
    failure_ = RunInNetns(ns_, [this]() { return fn_(out_); });
  }
  Napi::Value Result(Napi::Env env) override { return out_ < 0 ? env.Undefined() : Napi::Number::New(env, out_); }

 private:
  std::string ns_;
  Fn fn_;
  int out_ = -1;
};

Failure OpenSocket(int proto, int timeoutMs, int& out) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, proto);
  if (fd < 0) return {errno, "socket"};
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    int err = errno;
    close(fd);
    return {err, "bind"};
  }
  int one = 1;
  setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);  // error text in NLMSG_ERROR
  setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);  // errors do not echo the request
  timeval tv{timeoutMs / 1000, (timeoutMs % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  out = fd;
  return {};
}

Failure WriteAll(const std::string& path, const std::vector<uint8_t>& data) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return {errno, "open"};
  ssize_t n;
  do {
    n = write(fd, data.data(), data.size());
  } while (n < 0 && errno == EINTR);
  int err = errno;
  close(fd);
  if (n < 0) return {err, "write"};
  if (static_cast<size_t>(n) != data.size()) return {EIO, "write (short)"};
  return {};
}

Failure CreateTun(const std::string& name, bool tap) {
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) return {errno, "open /dev/net/tun"};
  ifreq ifr{};
  strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  ifr.ifr_flags = (tap ? IFF_TAP : IFF_TUN) | IFF_NO_PI;
  Failure f;
  if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
    f = {errno, "ioctl TUNSETIFF"};
  } else if (ioctl(fd, TUNSETPERSIST, 1) != 0) {
    f = {errno, "ioctl TUNSETPERSIST"};
  }
  close(fd);
  return f;
}

bool CheckArgs(const Napi::CallbackInfo& info, const char* types) {
  for (size_t i = 0; types[i]; i++) {
    bool ok = types[i] == 's' ? info[i].IsString() : types[i] == 'n' ? info[i].IsNumber() : info[i].IsBuffer();
    if (!ok) {
      Napi::TypeError::New(info.Env(), std::string("nsnl: bad argument ") + std::to_string(i))
          .ThrowAsJavaScriptException();
      return false;
    }
  }
  return true;
}

Napi::Value OpenNetlink(const Napi::CallbackInfo& info) {
  if (!CheckArgs(info, "snn")) return info.Env().Undefined();
  int proto = info[1].As<Napi::Number>().Int32Value(), timeoutMs = info[2].As<Napi::Number>().Int32Value();
  auto* w = new NsWorker(info.Env(), info[0].As<Napi::String>(),
                         [proto, timeoutMs](int& out) { return OpenSocket(proto, timeoutMs, out); });
  w->Queue();
  return w->Promise();
}

Napi::Value Request(const Napi::CallbackInfo& info) {
  if (!CheckArgs(info, "nb")) return info.Env().Undefined();
  auto b = info[1].As<Napi::Buffer<uint8_t>>();
  auto* w = new RequestWorker(info.Env(), info[0].As<Napi::Number>().Int32Value(), b.Data(), b.Length());
  w->Queue();
  return w->Promise();
}

Napi::Value WriteFile(const Napi::CallbackInfo& info) {
  if (!CheckArgs(info, "ssb")) return info.Env().Undefined();
  std::string path = info[1].As<Napi::String>();
  auto b = info[2].As<Napi::Buffer<uint8_t>>();
  std::vector<uint8_t> data(b.Data(), b.Data() + b.Length());
  auto* w = new NsWorker(info.Env(), info[0].As<Napi::String>(), [path, data](int&) { return WriteAll(path, data); });
  w->Queue();
  return w->Promise();
}

Napi::Value CreateTunDevice(const Napi::CallbackInfo& info) {
  if (!CheckArgs(info, "ss")) return info.Env().Undefined();
  std::string name = info[1].As<Napi::String>();
  bool tap = info[2].ToBoolean();
  auto* w = new NsWorker(info.Env(), info[0].As<Napi::String>(), [name, tap](int&) { return CreateTun(name, tap); });
  w->Queue();
  return w->Promise();
}

Napi::Value Stat(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckArgs(info, "s")) return env.Undefined();
  struct stat st {};
  if (stat(info[0].As<Napi::String>().Utf8Value().c_str(), &st) != 0) {
    MakeError(env, {errno, "stat"}).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("dev", Napi::BigInt::New(env, static_cast<uint64_t>(st.st_dev)));
  o.Set("ino", Napi::BigInt::New(env, static_cast<uint64_t>(st.st_ino)));
  return o;
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  if (!CheckArgs(info, "n")) return info.Env().Undefined();
  close(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("openNetlink", Napi::Function::New(env, OpenNetlink));
  exports.Set("request", Napi::Function::New(env, Request));
  exports.Set("writeFile", Napi::Function::New(env, WriteFile));
  exports.Set("createTun", Napi::Function::New(env, CreateTunDevice));
  exports.Set("stat", Napi::Function::New(env, Stat));
  exports.Set("close", Napi::Function::New(env, Close));
  RegisterIcmp(env, exports);
  RegisterFdPass(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(nsnl, Init)
