// SPDX-License-Identifier: Apache-2.0
//
// fdpass: unix stream sockets that carry file descriptors (SCM_RIGHTS), for src/sdk/grpc/fdsocket.ts.
// Node's net module cannot send or receive descriptors, so these few calls do; all of them are
// non-blocking and run on the JS thread, readiness comes from a libuv poll handle on the loop.
//
//  - unixListen(path) -> fd: a listening AF_UNIX stream socket (non-blocking, close-on-exec).
//  - unixAccept(fd) -> fd | -errno (-EAGAIN when nothing is pending).
//  - unixConnect(path) -> fd: connected, then switched to non-blocking.
//  - recvFds(fd, buffer) -> { n, fds } | -errno: one recvmsg; n == 0 is end of stream; every
//    descriptor that came with the bytes is returned (received close-on-exec).
//  - sendFd(fd, buffer, offset, length, passFd) -> n | -errno: one sendmsg of buffer[offset,
//    offset+length); passFd >= 0 rides on those bytes as SCM_RIGHTS.
//  - peerCred(fd) -> { pid, uid, gid } of the peer (SO_PEERCRED).
//  - pollFd(fd, readable, writable, callback(status, readable, writable)) -> handle;
//    pollUpdate(handle, readable, writable); pollStop(handle) (the handle is freed by libuv).
// Errors that are not about the data (bad path, no socket) throw an Error with errno, code, syscall.
#include <napi.h>
#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <string>

namespace {

constexpr int kMaxFdsPerMessage = 64;

Napi::Error ErrnoError(Napi::Env env, int err, const char* step) {
  const char* name = strerrorname_np(err);
  Napi::Error e = Napi::Error::New(env, std::string(step) + ": " + strerror(err));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("code", Napi::String::New(env, name ? name : "EUNKNOWN"));
  e.Set("syscall", Napi::String::New(env, step));
  return e;
}

bool UnixAddress(const std::string& path, sockaddr_un& addr) {
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) return false;
  memcpy(addr.sun_path, path.data(), path.size());
  return true;
}

Napi::Value UnixListen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  sockaddr_un addr;
  if (!info[0].IsString() || !UnixAddress(info[0].As<Napi::String>(), addr)) {
    Napi::TypeError::New(env, "unixListen(path): path empty or too long").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ErrnoError(env, errno, "socket").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const char* step = nullptr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) step = "bind";
  else if (listen(fd, 512) != 0) step = "listen";
  if (step) {
    int err = errno;
    close(fd);
    ErrnoError(env, err, step).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

Napi::Value UnixAccept(const Napi::CallbackInfo& info) {
  int fd = accept4(info[0].As<Napi::Number>().Int32Value(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  return Napi::Number::New(info.Env(), fd < 0 ? -errno : fd);
}

Napi::Value UnixConnect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  sockaddr_un addr;
  if (!info[0].IsString() || !UnixAddress(info[0].As<Napi::String>(), addr)) {
    Napi::TypeError::New(env, "unixConnect(path): path empty or too long").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ErrnoError(env, errno, "socket").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int rc;
  do rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  while (rc != 0 && errno == EINTR);
  if (rc != 0 || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
    int err = errno;
    close(fd);
    ErrnoError(env, err, "connect").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

Napi::Value RecvFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  auto buf = info[1].As<Napi::Buffer<uint8_t>>();
  iovec iov{buf.Data(), buf.Length()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) return Napi::Number::New(env, -errno);
  Napi::Array fds = Napi::Array::New(env);
  uint32_t count = 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const int* got = reinterpret_cast<const int*>(CMSG_DATA(c));
    for (size_t i = 0; i < k; i++) fds.Set(count++, Napi::Number::New(env, got[i]));
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("n", Napi::Number::New(env, static_cast<double>(n)));
  out.Set("fds", fds);
  out.Set("truncated", Napi::Boolean::New(env, (msg.msg_flags & MSG_CTRUNC) != 0));
  return out;
}

Napi::Value SendFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  auto buf = info[1].As<Napi::Buffer<uint8_t>>();
  size_t offset = info[2].As<Napi::Number>().Uint32Value();
  size_t length = info[3].As<Napi::Number>().Uint32Value();
  int passFd = info[4].As<Napi::Number>().Int32Value();
  if (offset > buf.Length() || length > buf.Length() - offset) {
    Napi::RangeError::New(env, "sendFd: range outside the buffer").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  iovec iov{buf.Data() + offset, length};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (passFd >= 0) {
    memset(control, 0, sizeof control);
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &passFd, sizeof(int));
  }
  ssize_t n;
  do n = sendmsg(fd, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return Napi::Number::New(env, n < 0 ? -errno : static_cast<double>(n));
}

// The process at the other end of a connected unix socket (SO_PEERCRED: as it was at connect()).
Napi::Value PeerCred(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ucred cred{};
  socklen_t len = sizeof cred;
  if (getsockopt(info[0].As<Napi::Number>().Int32Value(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    ErrnoError(env, errno, "getsockopt").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("pid", Napi::Number::New(env, cred.pid));
  o.Set("uid", Napi::Number::New(env, cred.uid));
  o.Set("gid", Napi::Number::New(env, cred.gid));
  return o;
}

// A libuv poll handle and the JS callback it reports to.
struct Poll {
  uv_poll_t handle;
  Napi::FunctionReference callback;
  napi_env env;
  bool stopped = false;
};

void OnPoll(uv_poll_t* h, int status, int events) {
  auto* p = static_cast<Poll*>(h->data);
  if (p->stopped) return;
  Napi::Env env(p->env);
  Napi::HandleScope scope(env);
  p->callback.MakeCallback(env.Global(), {Napi::Number::New(env, status),
                                          Napi::Boolean::New(env, (events & UV_READABLE) != 0),
                                          Napi::Boolean::New(env, (events & UV_WRITABLE) != 0)});
}

int Events(const Napi::CallbackInfo& info, size_t first) {
  return (info[first].ToBoolean() ? UV_READABLE : 0) | (info[first + 1].ToBoolean() ? UV_WRITABLE : 0);
}

void FinalizePoll(Napi::Env, Poll*) {}

Napi::Value PollFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[3].IsFunction()) {
    Napi::TypeError::New(env, "pollFd(fd, readable, writable, callback)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  auto* p = new Poll();
  p->env = env;
  p->callback = Napi::Persistent(info[3].As<Napi::Function>());
  p->handle.data = p;
  int rc = uv_poll_init(loop, &p->handle, info[0].As<Napi::Number>().Int32Value());
  if (rc == 0) rc = uv_poll_start(&p->handle, Events(info, 1), OnPoll);
  if (rc != 0) {
    p->stopped = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&p->handle), [](uv_handle_t* h) { delete static_cast<Poll*>(h->data); });
    ErrnoError(env, -rc, "uv_poll_start").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::External<Poll>::New(env, p, FinalizePoll);
}

Napi::Value PollUpdate(const Napi::CallbackInfo& info) {
  auto* p = info[0].As<Napi::External<Poll>>().Data();
  if (!p->stopped) uv_poll_start(&p->handle, Events(info, 1), OnPoll);
  return info.Env().Undefined();
}

// Stops and frees the handle; call it before closing the descriptor.
Napi::Value PollStop(const Napi::CallbackInfo& info) {
  auto* p = info[0].As<Napi::External<Poll>>().Data();
  if (!p->stopped) {
    p->stopped = true;
    uv_poll_stop(&p->handle);
    uv_close(reinterpret_cast<uv_handle_t*>(&p->handle), [](uv_handle_t* h) {
      auto* q = static_cast<Poll*>(h->data);
      q->callback.Reset();
      delete q;
    });
  }
  return info.Env().Undefined();
}

}  // namespace

// Called from nsnl.cc's module init.
void RegisterFdPass(Napi::Env env, Napi::Object exports) {
  exports.Set("unixListen", Napi::Function::New(env, UnixListen));
  exports.Set("unixAccept", Napi::Function::New(env, UnixAccept));
  exports.Set("unixConnect", Napi::Function::New(env, UnixConnect));
  exports.Set("recvFds", Napi::Function::New(env, RecvFds));
  exports.Set("sendFd", Napi::Function::New(env, SendFd));
  exports.Set("peerCred", Napi::Function::New(env, PeerCred));
  exports.Set("pollFd", Napi::Function::New(env, PollFd));
  exports.Set("pollUpdate", Napi::Function::New(env, PollUpdate));
  exports.Set("pollStop", Napi::Function::New(env, PollStop));
}
