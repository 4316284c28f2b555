/*
 * vessel_native: the few Linux system calls Node does not expose (mount,
 * device nodes for overlayfs whiteouts, xattrs without following symlinks)
 * and an AF_UNIX SOCK_SEQPACKET client driven by the libuv loop, because
 * net.Socket only speaks SOCK_STREAM and message boundaries matter to us.
 *
 * Plain Node-API C so one binary works across Node versions of the same ABI.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <uv.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#define MAX_MSG 65536
/* Bound the work done per wakeup so a chatty peer cannot starve the loop;
 * the poll is level-triggered and fires again for the rest. */
#define MAX_MSGS_PER_WAKEUP 1024

/* ---------- errors ---------- */

static const char *errno_name(int err) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 32)
  const char *n = strerrorname_np(err);
  if (n) return n;
#endif
  return uv_err_name(-err);
}

/* Shaped like Node's own system errors so callers can switch on .code. */
static napi_value errno_error(napi_env env, int err, const char *syscall, const char *path) {
  size_t len = strlen(syscall) + strlen(path) + 128;
  char *msg = malloc(len);
  napi_value m, code, e = NULL, v;
  if (!msg) return NULL;
  snprintf(msg, len, "%s %s: %s", syscall, path, strerror(err));
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m) == napi_ok &&
      napi_create_string_utf8(env, errno_name(err), NAPI_AUTO_LENGTH, &code) == napi_ok &&
      napi_create_error(env, code, m, &e) == napi_ok) {
    if (napi_create_int32(env, -err, &v) == napi_ok) napi_set_named_property(env, e, "errno", v);
    if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &v) == napi_ok)
      napi_set_named_property(env, e, "syscall", v);
    if (napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &v) == napi_ok)
      napi_set_named_property(env, e, "path", v);
  }
  free(msg);
  return e;
}

static napi_value throw_errno(napi_env env, int err, const char *syscall, const char *path) {
  napi_value e = errno_error(env, err, syscall, path);
  if (e) napi_throw(env, e);
  else napi_throw_error(env, errno_name(err), strerror(err));
  return NULL;
}

/* A failed napi call usually leaves an exception pending; make sure one is. */
static napi_value fail(napi_env env) {
  const napi_extended_error_info *info = NULL;
  napi_get_last_error_info(env, &info);
  const char *msg = info && info->error_message ? info->error_message : "Node-API call failed";
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) napi_throw_error(env, NULL, msg);
  return NULL;
}
#define CHECK(call) do { if ((call) != napi_ok) return fail(env); } while (0)

/* ---------- argument helpers ---------- */

/* malloc'd copy; embedded NULs are refused because they would silently
 * truncate a path at the syscall boundary. */
static bool get_str(napi_env env, napi_value v, bool nullable, const char *what, char **out) {
  napi_valuetype t;
  size_t len;
  char msg[96];
  *out = NULL;
  if (napi_typeof(env, v, &t) != napi_ok) return false;
  if (nullable && (t == napi_null || t == napi_undefined)) return true;
  if (t != napi_string) {
    snprintf(msg, sizeof msg, "%s must be a string", what);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return false;
  }
  napi_get_value_string_utf8(env, v, NULL, 0, &len);
  if (!(*out = malloc(len + 1))) { throw_errno(env, ENOMEM, "malloc", what); return false; }
  napi_get_value_string_utf8(env, v, *out, len + 1, &len);
  if (strlen(*out) != len) {
    free(*out);
    *out = NULL;
    snprintf(msg, sizeof msg, "%s must not contain NUL bytes", what);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", msg);
    return false;
  }
  return true;
}

static bool get_uint(napi_env env, napi_value v, bool optional, const char *what, uint64_t *out) {
  napi_valuetype t;
  double d;
  char msg[96];
  *out = 0;
  if (napi_typeof(env, v, &t) != napi_ok) return false;
  if (optional && t == napi_undefined) return true;
  if (t != napi_number || napi_get_value_double(env, v, &d) != napi_ok || d < 0 || d > 9007199254740991.0 ||
      (double)(uint64_t)d != d) {
    snprintf(msg, sizeof msg, "%s must be a non-negative integer", what);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return false;
  }
  *out = (uint64_t)d;
  return true;
}

/* ---------- mount / mknod / xattr ---------- */

static napi_value js_mount(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  char *src = NULL, *tgt = NULL, *fstype = NULL, *data = NULL;
  uint64_t flags;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (get_str(env, argv[0], true, "source", &src) && get_str(env, argv[1], false, "target", &tgt) &&
      get_str(env, argv[2], true, "fstype", &fstype) && get_uint(env, argv[3], false, "flags", &flags) &&
      get_str(env, argv[4], true, "data", &data) &&
      mount(src, tgt, fstype, (unsigned long)flags, data) != 0)
    throw_errno(env, errno, "mount", tgt);
  free(src); free(tgt); free(fstype); free(data);
  return NULL;
}

static napi_value js_umount(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  char *tgt = NULL;
  uint64_t flags;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (get_str(env, argv[0], false, "target", &tgt) && get_uint(env, argv[1], true, "flags", &flags) &&
      umount2(tgt, (int)flags) != 0)
    throw_errno(env, errno, "umount", tgt);
  free(tgt);
  return NULL;
}

static napi_value js_mknod(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  char *path = NULL;
  uint64_t mode, major, minor;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (get_str(env, argv[0], false, "path", &path) && get_uint(env, argv[1], false, "mode", &mode) &&
      get_uint(env, argv[2], false, "major", &major) && get_uint(env, argv[3], false, "minor", &minor) &&
      mknod(path, (mode_t)mode, makedev((unsigned)major, (unsigned)minor)) != 0)
    throw_errno(env, errno, "mknod", path);
  free(path);
  return NULL;
}

static napi_value js_setxattr(napi_env env, napi_callback_info info) {
  size_t argc = 3, len = 0;
  napi_value argv[3];
  char *path = NULL, *name = NULL, *str = NULL;
  void *data = NULL;
  bool is_buf = false;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_is_buffer(env, argv[2], &is_buf);
  if (!get_str(env, argv[0], false, "path", &path) || !get_str(env, argv[1], false, "name", &name)) goto out;
  if (is_buf) {
    if (napi_get_buffer_info(env, argv[2], &data, &len) != napi_ok) { fail(env); goto out; }
  } else {
    if (!get_str(env, argv[2], false, "value", &str)) goto out;
    data = str;
    len = strlen(str);
  }
  if (lsetxattr(path, name, data, len, 0) != 0) throw_errno(env, errno, "setxattr", path);
out:
  free(path); free(name); free(str);
  return NULL;
}

static napi_value js_getxattr(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result = NULL;
  char *path = NULL, *name = NULL, *buf = NULL;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_str(env, argv[0], false, "path", &path) || !get_str(env, argv[1], false, "name", &name)) goto out;
  for (;;) { /* the value can grow between sizing and reading: retry on ERANGE */
    ssize_t n = lgetxattr(path, name, NULL, 0), r = 0;
    if (n > 0) {
      free(buf);
      if (!(buf = malloc((size_t)n))) { throw_errno(env, ENOMEM, "getxattr", path); goto out; }
      r = lgetxattr(path, name, buf, (size_t)n);
    }
    if (n < 0 || r < 0) {
      if (errno == ERANGE) continue;
      if (errno == ENODATA) napi_get_null(env, &result);
      else throw_errno(env, errno, "getxattr", path);
      goto out;
    }
    if (napi_create_buffer_copy(env, (size_t)r, buf ? buf : "", NULL, &result) != napi_ok) fail(env);
    goto out;
  }
out:
  free(path); free(name); free(buf);
  return result;
}

/* ---------- SOCK_SEQPACKET client ---------- */

typedef struct wmsg { struct wmsg *next; size_t len; char data[]; } wmsg;

typedef struct {
  napi_env env;
  napi_ref self;    /* from napi_wrap; held strong while open so an idle socket is not collected */
  napi_ref owner;   /* object whose onMessage/onClose we invoke; strong while open */
  napi_async_context actx;
  napi_async_cleanup_hook_handle cleanup;
  uv_poll_t poll;
  int fd;           /* -1 once closed: the single "is open" flag */
  int events;
  int depth;        /* >0 while inside a JS callback: defer releasing JS state */
  bool self_held, in_env_cleanup, handle_open, finalized;
  bool shut_req, shut_done; /* shutdownWrite() called / performed */
  char *path;       /* for error messages */
  wmsg *head, *tail;
  unsigned char rbuf[MAX_MSG];
} sock_t;

static void on_poll(uv_poll_t *h, int status, int events);

/* Freeing needs both the JS object gone and libuv done with the handle. */
static void on_poll_closed(uv_handle_t *h) {
  sock_t *s = h->data;
  s->handle_open = false;
  if (s->in_env_cleanup && s->cleanup) napi_remove_async_cleanup_hook(s->cleanup);
  s->cleanup = NULL;
  if (s->finalized) { free(s->path); free(s); }
}

/* The part of closing that needs no JS, so env teardown can use it too.
 * uv_close comes first: it removes the fd from epoll before we close it. */
static void stop_io(sock_t *s) {
  if (s->fd < 0) return;
  uv_close((uv_handle_t *)&s->poll, on_poll_closed);
  close(s->fd);
  s->fd = -1;
  while (s->head) { wmsg *m = s->head; s->head = m->next; free(m); }
  s->tail = NULL;
  if (s->cleanup && !s->in_env_cleanup) { napi_remove_async_cleanup_hook(s->cleanup); s->cleanup = NULL; }
}

/* Dropping the strong refs lets GC collect a closed socket. */
static void release_js(sock_t *s) {
  if (s->actx) { napi_async_destroy(s->env, s->actx); s->actx = NULL; }
  if (s->owner) { napi_delete_reference(s->env, s->owner); s->owner = NULL; }
  if (s->self_held) { napi_reference_unref(s->env, s->self, NULL); s->self_held = false; }
}

/* Worker/env teardown: libuv refuses to close a loop with live handles. */
static void on_env_cleanup(napi_async_cleanup_hook_handle h, void *arg) {
  sock_t *s = arg;
  s->in_env_cleanup = true;
  if (s->fd >= 0) stop_io(s); /* on_poll_closed completes the hook */
  else napi_remove_async_cleanup_hook(h);
}

static void sock_finalize(napi_env env, void *data, void *hint) {
  sock_t *s = data;
  s->finalized = true;
  napi_delete_reference(env, s->self);
  if (!s->handle_open) { free(s->path); free(s); }
}

static void update_poll(sock_t *s) {
  int want = UV_READABLE | (s->head ? UV_WRITABLE : 0);
  if (s->fd >= 0 && want != s->events && uv_poll_start(&s->poll, want, on_poll) == 0) s->events = want;
}

/* From a libuv callback there is no JS on the stack: napi_make_callback sets
 * up async context and runs microtasks; a throw becomes uncaughtException. */
static void call_js(sock_t *s, const char *prop, napi_value arg) {
  napi_env env = s->env;
  napi_value owner, fn, exc;
  napi_valuetype t = napi_undefined;
  bool pending = false;
  if (!s->owner || napi_get_reference_value(env, s->owner, &owner) != napi_ok || !owner) return;
  if (napi_get_named_property(env, owner, prop, &fn) == napi_ok) napi_typeof(env, fn, &t);
  s->depth++;
  if (t == napi_function) napi_make_callback(env, s->actx, owner, fn, 1, &arg, NULL);
  s->depth--;
  napi_is_exception_pending(env, &pending);
  if (pending && napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_fatal_exception(env, exc);
}

/* Peer is gone (EOF or error): close first so onClose sees a closed socket. */
static void finish(sock_t *s, int err, const char *syscall) {
  napi_value arg = NULL;
  stop_io(s);
  if (err) arg = errno_error(s->env, err, syscall, s->path);
  if (!arg) napi_get_null(s->env, &arg);
  call_js(s, "onClose", arg);
}

/* Returns 0 when drained for now, -1 on EOF, else an errno. */
static int drain_reads(sock_t *s) {
  for (int i = 0; i < MAX_MSGS_PER_WAKEUP && s->fd >= 0; i++) {
    /* MSG_TRUNC makes recv report the real length so oversize is detectable. */
    ssize_t n = recv(s->fd, s->rbuf, MAX_MSG, MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : errno;
    }
    if (n > MAX_MSG) return EMSGSIZE;
    if (n == 0) {
      /* SEQPACKET allows empty messages, which recv() cannot tell from EOF.
       * EOF needs the peer shut down and nothing queued; an empty message
       * right before the peer closes is therefore indistinguishable and lost. */
      struct pollfd p = { .fd = s->fd, .events = POLLRDHUP };
      int queued = 0;
      if (poll(&p, 1, 0) < 0 || ((p.revents & (POLLRDHUP | POLLHUP | POLLERR)) &&
                                 (ioctl(s->fd, FIONREAD, &queued) != 0 || queued == 0)))
        return -1;
    }
    napi_handle_scope scope;
    napi_value buf;
    if (napi_open_handle_scope(s->env, &scope) != napi_ok) return EIO;
    if (napi_create_buffer_copy(s->env, (size_t)n, s->rbuf, NULL, &buf) == napi_ok) call_js(s, "onMessage", buf);
    napi_close_handle_scope(s->env, scope);
  }
  return 0;
}

static int send_one(sock_t *s, const void *p, size_t n) {
  while (send(s->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
    if (errno != EINTR) return errno == EWOULDBLOCK ? EAGAIN : errno;
  return 0;
}

/* Returns 0 or an errno; stops (keeping order) at the first EAGAIN. */
static int flush_writes(sock_t *s) {
  while (s->head) {
    int err = send_one(s, s->head->data, s->head->len);
    if (err == EAGAIN) break;
    if (err) return err;
    wmsg *m = s->head;
    if (!(s->head = m->next)) s->tail = NULL;
    free(m);
  }
  if (!s->head && s->shut_req && !s->shut_done) {
    s->shut_done = true;
    if (shutdown(s->fd, SHUT_WR) != 0 && errno != ENOTCONN) return errno;
  }
  update_poll(s);
  return 0;
}

static void on_poll(uv_poll_t *h, int status, int events) {
  sock_t *s = h->data;
  napi_handle_scope scope;
  int err = 0;
  if (napi_open_handle_scope(s->env, &scope) != napi_ok) return;
  /* On POLLERR libuv stops the handle and reports UV_EBADF; read to learn why. */
  if (status < 0) events = UV_READABLE;
  if (events & (UV_READABLE | UV_DISCONNECT)) err = drain_reads(s);
  if (err) {
    if (s->fd >= 0) finish(s, err < 0 ? 0 : err, "recv");
  } else if (s->fd >= 0 && (events & UV_WRITABLE) && (err = flush_writes(s))) {
    finish(s, err, "send");
  } else if (s->fd >= 0 && status < 0) {
    socklen_t l = sizeof err;
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &l) != 0 || !err) err = EIO;
    finish(s, err, "recv");
  }
  if (s->fd < 0) release_js(s);
  napi_close_handle_scope(s->env, scope);
}

/* sun_path holds 108 bytes; reach longer paths through the parent directory's
 * /proc/self/fd entry rather than chdir, which is process-wide. */
static int connect_unix(int fd, const char *path) {
  struct sockaddr_un a = { .sun_family = AF_UNIX };
  size_t len = strlen(path);
  int dirfd = -1, err = 0;
  if (len < sizeof a.sun_path) {
    memcpy(a.sun_path, path, len + 1);
  } else {
    const char *slash = strrchr(path, '/');
    if (!slash) return ENAMETOOLONG;
    char *dir = slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
    if (!dir) return ENOMEM;
    dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (dirfd < 0) return errno;
    int n = snprintf(a.sun_path, sizeof a.sun_path, "/proc/self/fd/%d/%s", dirfd, slash + 1);
    if (n < 0 || (size_t)n >= sizeof a.sun_path) { close(dirfd); return ENAMETOOLONG; }
  }
  /* Non-blocking: a full listen backlog fails with EAGAIN instead of
   * freezing the event loop; otherwise AF_UNIX connects complete at once. */
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) err = errno;
  if (dirfd >= 0) close(dirfd);
  return err;
}

/* new SeqpacketSocket(path, owner?) -- connects synchronously. */
static napi_value sock_new(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], self, owner, name;
  napi_valuetype t;
  char *path = NULL;
  uv_loop_t *loop;
  CHECK(napi_get_new_target(env, info, &name));
  if (!name) { napi_throw_type_error(env, NULL, "SeqpacketSocket must be called with new"); return NULL; }
  CHECK(napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  CHECK(napi_typeof(env, argv[1], &t));
  owner = t == napi_object ? argv[1] : self;
  CHECK(napi_get_uv_event_loop(env, &loop));
  if (!get_str(env, argv[0], false, "path", &path)) return NULL;
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), err;
  if (fd < 0 || (err = connect_unix(fd, path)) != 0) {
    err = fd < 0 ? errno : err;
    if (fd >= 0) close(fd);
    throw_errno(env, err, fd < 0 ? "socket" : "connect", path);
    free(path);
    return NULL;
  }
  sock_t *s = calloc(1, sizeof *s);
  err = s ? uv_poll_init(loop, &s->poll, fd) : UV_ENOMEM;
  if (err) {
    close(fd);
    free(s);
    throw_errno(env, -err, "uv_poll_init", path);
    free(path);
    return NULL;
  }
  s->env = env; s->fd = fd; s->path = path; s->poll.data = s; s->handle_open = true;
  if (napi_wrap(env, self, s, sock_finalize, NULL, &s->self) != napi_ok) {
    s->finalized = true; /* nothing else will free it */
    stop_io(s);
    return fail(env);
  }
  napi_reference_ref(env, s->self, NULL);
  s->self_held = true;
  if (napi_create_reference(env, owner, 1, &s->owner) != napi_ok ||
      napi_create_string_utf8(env, "VesselSeqpacketSocket", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, owner, name, &s->actx) != napi_ok ||
      napi_add_async_cleanup_hook(env, on_env_cleanup, s, &s->cleanup) != napi_ok ||
      uv_poll_start(&s->poll, UV_READABLE, on_poll) != 0) {
    stop_io(s);
    release_js(s);
    return fail(env);
  }
  s->events = UV_READABLE;
  return self;
}

static sock_t *unwrap(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_value self;
  void *s = NULL;
  if (napi_get_cb_info(env, info, argc, argv, &self, NULL) != napi_ok || napi_unwrap(env, self, &s) != napi_ok) {
    fail(env);
    return NULL;
  }
  return s;
}

/* Returns true if sent now, false if queued behind earlier writes or EAGAIN. */
static napi_value sock_write(napi_env env, napi_callback_info info) {
  size_t argc = 1, len;
  napi_value argv[1], ret;
  void *data;
  bool is_buf = false;
  sock_t *s = unwrap(env, info, &argc, argv);
  if (!s) return NULL;
  if (s->fd < 0) return throw_errno(env, EBADF, "send", s->path);
  if (s->shut_req) return throw_errno(env, EPIPE, "send", s->path);
  napi_is_buffer(env, argv[0], &is_buf);
  if (!is_buf) { napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "msg must be a Buffer"); return NULL; }
  CHECK(napi_get_buffer_info(env, argv[0], &data, &len));
  int err = s->head ? EAGAIN : send_one(s, data, len);
  /* Connection-level failures surface through onClose, like net.Socket; the
   * queued message makes the writable poll (HUP) report them. */
  if (err && err != EAGAIN && err != EPIPE && err != ECONNRESET && err != ENOTCONN)
    return throw_errno(env, err, "send", s->path);
  if (err) {
    wmsg *m = malloc(sizeof *m + len);
    if (!m) return throw_errno(env, ENOMEM, "send", s->path);
    m->next = NULL; m->len = len;
    memcpy(m->data, data, len);
    if (s->tail) s->tail->next = m; else s->head = m;
    s->tail = m;
    update_poll(s);
  }
  CHECK(napi_get_boolean(env, err == 0, &ret));
  return ret;
}

static napi_value sock_shutdown_write(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  sock_t *s = unwrap(env, info, &argc, NULL);
  if (!s || s->fd < 0 || s->shut_req) return NULL;
  s->shut_req = true;
  if (s->head) return NULL; /* flush_writes does it once drained */
  s->shut_done = true;
  if (shutdown(s->fd, SHUT_WR) != 0 && errno != ENOTCONN) return throw_errno(env, errno, "shutdown", s->path);
  return NULL;
}

static napi_value sock_close(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  sock_t *s = unwrap(env, info, &argc, NULL);
  if (!s) return NULL;
  stop_io(s);
  if (s->depth == 0) release_js(s); /* else on_poll releases after the callback */
  return NULL;
}

static napi_value sock_ref(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  bool on = true;
  sock_t *s = unwrap(env, info, &argc, argv);
  if (!s) return NULL;
  napi_get_value_bool(env, argv[0], &on);
  if (s->fd >= 0) { if (on) uv_ref((uv_handle_t *)&s->poll); else uv_unref((uv_handle_t *)&s->poll); }
  return NULL;
}

/* ---------- module ---------- */

static napi_status set_num(napi_env env, napi_value obj, const char *name, double v) {
  napi_value n;
  napi_status st = napi_create_double(env, v, &n);
  return st == napi_ok ? napi_set_named_property(env, obj, name, n) : st;
}

NAPI_MODULE_INIT() {
  napi_value ms, cls;
  const napi_property_descriptor fns[] = {
    { "mount", NULL, js_mount, NULL, NULL, NULL, napi_enumerable, NULL },
    { "umount", NULL, js_umount, NULL, NULL, NULL, napi_enumerable, NULL },
    { "mknod", NULL, js_mknod, NULL, NULL, NULL, napi_enumerable, NULL },
    { "setxattr", NULL, js_setxattr, NULL, NULL, NULL, napi_enumerable, NULL },
    { "getxattr", NULL, js_getxattr, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  const napi_property_descriptor methods[] = {
    { "write", NULL, sock_write, NULL, NULL, NULL, napi_default, NULL },
    { "shutdownWrite", NULL, sock_shutdown_write, NULL, NULL, NULL, napi_default, NULL },
    { "close", NULL, sock_close, NULL, NULL, NULL, napi_default, NULL },
    { "setRef", NULL, sock_ref, NULL, NULL, NULL, napi_default, NULL },
  };
  const struct { const char *name; unsigned long v; } flags[] = {
    { "RDONLY", MS_RDONLY }, { "NOSUID", MS_NOSUID }, { "NODEV", MS_NODEV }, { "NOEXEC", MS_NOEXEC },
    { "REMOUNT", MS_REMOUNT }, { "BIND", MS_BIND }, { "REC", MS_REC }, { "PRIVATE", MS_PRIVATE },
    { "SLAVE", MS_SLAVE }, { "SHARED", MS_SHARED }, { "UNBINDABLE", MS_UNBINDABLE }, { "MOVE", MS_MOVE },
    { "NOATIME", MS_NOATIME }, { "RELATIME", MS_RELATIME }, { "STRICTATIME", MS_STRICTATIME },
  };
  CHECK(napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns));
  CHECK(napi_create_object(env, &ms));
  for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) CHECK(set_num(env, ms, flags[i].name, (double)flags[i].v));
  CHECK(napi_set_named_property(env, exports, "MS", ms));
  CHECK(set_num(env, exports, "MNT_DETACH", MNT_DETACH));
  CHECK(set_num(env, exports, "S_IFCHR", S_IFCHR));
  CHECK(napi_define_class(env, "SeqpacketSocket", NAPI_AUTO_LENGTH, sock_new, NULL,
                          sizeof methods / sizeof methods[0], methods, &cls));
  CHECK(napi_set_named_property(env, exports, "SeqpacketSocket", cls));
  return exports;
}
