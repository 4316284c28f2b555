/*
 * vessel_native: the few Linux system calls Node does not expose (mount,
 * device nodes for overlayfs whiteouts, xattrs without following symlinks)
 * and an AF_UNIX SOCK_SEQPACKET client driven by the libuv loop, because
 * net.Socket only speaks SOCK_STREAM and our protocols need message boundaries.
 *
 * Plain Node-API C so one binary works across Node versions of the same ABI.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <uv.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
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
#include "vessel_native.h"

#define MAX_MSG 65536
/* Bounds the work per wakeup so a chatty peer cannot starve the loop; the
 * poll is level-triggered and fires again for whatever is left. */
#define MAX_MSGS_PER_WAKEUP 1024
#define MAX_ARGS 5

/* ---------- errors and arguments ---------- */

static const char *errno_name(int err) {
  const char *n = strerrorname_np(err); /* glibc >= 2.32 */
  return n ? n : uv_err_name(-err);
}

static void set_str(napi_env env, napi_value obj, const char *key, const char *val) {
  napi_value v;
  if (napi_create_string_utf8(env, val, NAPI_AUTO_LENGTH, &v) == napi_ok) napi_set_named_property(env, obj, key, v);
}

/* Shaped like Node's own system errors so callers can switch on .code. */
static napi_value errno_error(napi_env env, int err, const char *syscall, const char *path) {
  char *msg = NULL;
  napi_value m, code, e = NULL, v;
  if (asprintf(&msg, "%s %s: %s", syscall, path, strerror(err)) < 0) return NULL;
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m) == napi_ok &&
      napi_create_string_utf8(env, errno_name(err), NAPI_AUTO_LENGTH, &code) == napi_ok &&
      napi_create_error(env, code, m, &e) == napi_ok) {
    if (napi_create_int32(env, -err, &v) == napi_ok) napi_set_named_property(env, e, "errno", v);
    set_str(env, e, "syscall", syscall);
    set_str(env, e, "path", path);
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

napi_value vn_throw_errno(napi_env env, int err, const char *syscall, const char *path) {
  return throw_errno(env, err, syscall, path);
}

void vn_settle(napi_env env, napi_deferred deferred, int err, const char *syscall, const char *path) {
  napi_value v = NULL;
  if (!err && napi_get_undefined(env, &v) == napi_ok) {
    napi_resolve_deferred(env, deferred, v);
    return;
  }
  v = errno_error(env, err ? err : EIO, syscall, path);
  if (!v) napi_get_undefined(env, &v);
  napi_reject_deferred(env, deferred, v);
}

/* A failed napi call usually leaves an exception pending; make sure one is. */
static napi_value fail(napi_env env) {
  const napi_extended_error_info *info = NULL;
  bool pending = false;
  napi_get_last_error_info(env, &info);
  const char *msg = info && info->error_message ? info->error_message : "Node-API call failed";
  napi_is_exception_pending(env, &pending);
  if (!pending) napi_throw_error(env, NULL, msg);
  return NULL;
}
#define CHECK(call) do { if ((call) != napi_ok) return fail(env); } while (0)
static bool failed(napi_env env) { fail(env); return false; }

typedef struct {
  napi_value self, argv[MAX_ARGS];
  char *str[MAX_ARGS];  /* malloc'd copies, freed by args_free */
  uint64_t num[MAX_ARGS];
  void *data[MAX_ARGS]; /* 'b': bytes of a Buffer or string */
  size_t len[MAX_ARGS];
} args_t;

static bool arg_fail(napi_env env, const char *code, int i, const char *what) {
  char msg[80];
  snprintf(msg, sizeof msg, "argument %d %s", i + 1, what);
  napi_throw_type_error(env, code, msg);
  return false;
}

/* spec, one letter per argument: 's' string, 'z' string or null/undefined
 * (-> NULL), 'u' non-negative integer, 'o' optional one (default 0),
 * 'b' Buffer or string. Embedded NULs are refused: they would silently
 * truncate a path at the syscall boundary. */
static bool args_parse(napi_env env, napi_callback_info info, const char *spec, args_t *a) {
  size_t argc = MAX_ARGS;
  memset(a, 0, sizeof *a);
  if (napi_get_cb_info(env, info, &argc, a->argv, &a->self, NULL) != napi_ok) return failed(env);
  for (int i = 0; spec[i]; i++) {
    napi_valuetype t;
    bool is_buf = false;
    double d;
    size_t len;
    if (napi_typeof(env, a->argv[i], &t) != napi_ok) return failed(env);
    if (spec[i] == 'b' && napi_is_buffer(env, a->argv[i], &is_buf) == napi_ok && is_buf) {
      if (napi_get_buffer_info(env, a->argv[i], &a->data[i], &a->len[i]) != napi_ok) return failed(env);
    } else if (spec[i] == 'u' || spec[i] == 'o') {
      if (spec[i] == 'o' && t == napi_undefined) continue;
      if (t != napi_number || napi_get_value_double(env, a->argv[i], &d) != napi_ok || !(d >= 0) ||
          d > 9007199254740991.0 || (double)(uint64_t)d != d)
        return arg_fail(env, "ERR_INVALID_ARG_TYPE", i, "must be a non-negative integer");
      a->num[i] = (uint64_t)d;
    } else if (spec[i] == 'z' && (t == napi_null || t == napi_undefined)) {
      continue;
    } else if (t != napi_string) {
      return arg_fail(env, "ERR_INVALID_ARG_TYPE", i, spec[i] == 'b' ? "must be a Buffer or string" : "must be a string");
    } else {
      napi_get_value_string_utf8(env, a->argv[i], NULL, 0, &len);
      if (!(a->str[i] = malloc(len + 1))) { throw_errno(env, ENOMEM, "malloc", "argument"); return false; }
      napi_get_value_string_utf8(env, a->argv[i], a->str[i], len + 1, &len);
      if (strlen(a->str[i]) != len) return arg_fail(env, "ERR_INVALID_ARG_VALUE", i, "must not contain NUL bytes");
      a->data[i] = a->str[i];
      a->len[i] = len;
    }
  }
  return true;
}

static napi_value args_free(args_t *a, napi_value ret) {
  for (int i = 0; i < MAX_ARGS; i++) free(a->str[i]);
  return ret;
}

/* ---------- mount / mknod / xattr ---------- */

static napi_value js_mount(napi_env env, napi_callback_info info) {
  args_t a;
  if (args_parse(env, info, "zszuz", &a) && mount(a.str[0], a.str[1], a.str[2], a.num[3], a.str[4]) != 0)
    throw_errno(env, errno, "mount", a.str[1]);
  return args_free(&a, NULL);
}

static napi_value js_umount(napi_env env, napi_callback_info info) {
  args_t a;
  if (args_parse(env, info, "so", &a) && umount2(a.str[0], (int)a.num[1]) != 0)
    throw_errno(env, errno, "umount", a.str[0]);
  return args_free(&a, NULL);
}

/* ---------- operations on a path, run on a thread-pool thread ---------- */

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  char *path;
  int flags, err;
  vn_path_op op;
  const char *syscall;
} path_job_t;

static void path_job_execute(napi_env env, void *data) {
  path_job_t *j = data;
  j->err = j->op(j->path, j->flags);
}

static void path_job_complete(napi_env env, napi_status status, void *data) {
  path_job_t *j = data;
  vn_settle(env, j->deferred, status == napi_ok ? j->err : EIO, j->syscall, j->path);
  napi_delete_async_work(env, j->work);
  free(j->path);
  free(j);
}

napi_value vn_queue_path_op(napi_env env, const char *path, int flags, vn_path_op op, const char *syscall) {
  napi_value promise = NULL, name;
  path_job_t *j = calloc(1, sizeof *j);
  if (!j || !(j->path = strdup(path))) {
    free(j);
    return throw_errno(env, ENOMEM, syscall, path);
  }
  j->flags = flags;
  j->op = op;
  j->syscall = syscall;
  if (napi_create_promise(env, &j->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, path_job_execute, path_job_complete, j, &j->work) != napi_ok ||
      napi_queue_async_work(env, j->work) != napi_ok) {
    free(j->path);
    free(j);
    return fail(env);
  }
  return promise;
}

/* umountAsync(target, flags) -> Promise. Unmounting an overlay costs a
 * millisecond of kernel time; off the main thread it runs beside the other
 * steps of releasing a container. */
static int umount_op(const char *target, int flags) {
  return umount2(target, flags) == 0 ? 0 : errno;
}

static napi_value js_umount_async(napi_env env, napi_callback_info info) {
  args_t a;
  napi_value promise = NULL;
  if (args_parse(env, info, "so", &a)) promise = vn_queue_path_op(env, a.str[0], (int)a.num[1], umount_op, "umount");
  return args_free(&a, promise);
}

static napi_value js_mknod(napi_env env, napi_callback_info info) {
  args_t a;
  if (args_parse(env, info, "suuu", &a) &&
      mknod(a.str[0], (mode_t)a.num[1], makedev((unsigned)a.num[2], (unsigned)a.num[3])) != 0)
    throw_errno(env, errno, "mknod", a.str[0]);
  return args_free(&a, NULL);
}

static napi_value js_setxattr(napi_env env, napi_callback_info info) {
  args_t a;
  if (args_parse(env, info, "ssb", &a) && lsetxattr(a.str[0], a.str[1], a.data[2], a.len[2], 0) != 0)
    throw_errno(env, errno, "setxattr", a.str[0]);
  return args_free(&a, NULL);
}

static napi_value js_getxattr(napi_env env, napi_callback_info info) {
  args_t a;
  napi_value result = NULL;
  char *buf = NULL;
  ssize_t n;
  if (!args_parse(env, info, "ss", &a)) return args_free(&a, NULL);
  do { /* the value may grow between sizing and reading: retry on ERANGE */
    free(buf);
    buf = NULL;
    n = lgetxattr(a.str[0], a.str[1], NULL, 0);
    if (n > 0 && !(buf = malloc((size_t)n))) errno = ENOMEM, n = -1;
    else if (n > 0) n = lgetxattr(a.str[0], a.str[1], buf, (size_t)n);
  } while (n < 0 && errno == ERANGE);
  if (n < 0 && errno == ENODATA) napi_get_null(env, &result);
  else if (n < 0) throw_errno(env, errno, "getxattr", a.str[0]);
  else if (napi_create_buffer_copy(env, (size_t)n, buf ? buf : "", NULL, &result) != napi_ok) fail(env);
  free(buf);
  return args_free(&a, result);
}

/* ---------- SOCK_SEQPACKET client ---------- */

typedef struct wmsg { struct wmsg *next; size_t len; char data[]; } wmsg;

typedef struct {
  napi_env env;
  napi_ref self;  /* from napi_wrap; held strong while open so an idle socket survives GC */
  napi_ref owner; /* object whose onMessage/onClose we invoke; strong while open */
  napi_async_context actx;
  napi_async_cleanup_hook_handle cleanup;
  uv_poll_t poll;
  int fd;         /* -1 once closed: the one "is open" flag */
  int events;     /* what the poll currently watches */
  int depth;      /* >0 while a JS callback runs: release JS state afterwards */
  bool self_held, in_env_cleanup, handle_open, finalized;
  bool shut_req, shut_done; /* shutdownWrite() called / performed */
  char *path;     /* for error messages */
  wmsg *head, *tail;
  unsigned char rbuf[MAX_MSG];
} sock_t;

static void on_poll(uv_poll_t *h, int status, int events);

static void sock_free(sock_t *s) { free(s->path); free(s); }

/* Freeing needs both the JS object finalized and libuv done with the handle. */
static void on_poll_closed(uv_handle_t *h) {
  sock_t *s = h->data;
  s->handle_open = false;
  if (s->in_env_cleanup && s->cleanup) napi_remove_async_cleanup_hook(s->cleanup);
  s->cleanup = NULL;
  if (s->finalized) sock_free(s);
}

/* The part of closing that needs no JS, so env teardown can use it too.
 * uv_close comes first: it takes the fd out of epoll before we close it. */
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

/* Worker/env teardown: a loop cannot be closed with live handles, and the
 * env stays alive until on_poll_closed reports the hook done. JS can no
 * longer run here, so releasing the refs only frees memory. */
static void on_env_cleanup(napi_async_cleanup_hook_handle h, void *arg) {
  sock_t *s = arg;
  s->in_env_cleanup = true;
  release_js(s);
  if (s->fd >= 0) stop_io(s);
  else napi_remove_async_cleanup_hook(h);
}

static void sock_finalize(napi_env env, void *data, void *hint) {
  sock_t *s = data;
  s->finalized = true;
  napi_delete_reference(env, s->self);
  if (!s->handle_open) sock_free(s);
}

static void update_poll(sock_t *s) {
  int want = UV_READABLE | (s->head ? UV_WRITABLE : 0);
  if (s->fd >= 0 && want != s->events && uv_poll_start(&s->poll, want, on_poll) == 0) s->events = want;
}

/* From a libuv callback there is no JS on the stack: napi_make_callback
 * enters the async context and runs microtasks afterwards; a throw is
 * re-raised as uncaughtException instead of being swallowed. */
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

/* The peer is gone: close first, so onClose already sees a closed socket. */
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
    napi_handle_scope scope;
    napi_value buf;
    /* MSG_TRUNC makes recv return the real length, so oversize is detected. */
    ssize_t n = recv(s->fd, s->rbuf, MAX_MSG, MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : errno;
    if (n > MAX_MSG) return EMSGSIZE;
    if (n == 0) {
      /* SEQPACKET allows empty messages, which recv() cannot tell from EOF.
       * It is EOF only once the peer shut down and nothing is queued; so an
       * empty message that is the very last before the peer closes is lost. */
      struct pollfd p = { .fd = s->fd, .events = POLLRDHUP };
      int queued = 0;
      if (poll(&p, 1, 0) < 0 || ((p.revents & (POLLRDHUP | POLLHUP | POLLERR)) &&
                                 (ioctl(s->fd, FIONREAD, &queued) != 0 || queued == 0)))
        return -1;
    }
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

/* Returns 0 or an errno; stops at the first EAGAIN so order is kept. */
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

/* sun_path holds 108 bytes; longer paths are reached through the parent
 * directory's /proc/self/fd entry rather than chdir, which is process-wide. */
static int connect_unix(int fd, const char *path) {
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  const char *slash = strrchr(path, '/');
  int dirfd = -1, err = 0;
  if (strlen(path) < sizeof sa.sun_path) {
    strcpy(sa.sun_path, path);
  } else {
    char *dir = !slash ? NULL : slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
    if (!dir) return slash ? ENOMEM : ENAMETOOLONG;
    dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (dirfd < 0) return errno;
    int n = snprintf(sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d/%s", dirfd, slash + 1);
    if (n < 0 || (size_t)n >= sizeof sa.sun_path) err = ENAMETOOLONG;
  }
  /* The socket is non-blocking: a full listen backlog fails with EAGAIN
   * instead of freezing the loop; otherwise AF_UNIX connects finish at once. */
  if (!err && connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) err = errno;
  if (dirfd >= 0) close(dirfd);
  return err;
}

/* new SeqpacketSocket(path, owner?) connects synchronously; callbacks are
 * looked up on owner (default: the new object) each time they fire. */
static napi_value sock_new(napi_env env, napi_callback_info info) {
  args_t a;
  napi_value target, owner, name;
  napi_valuetype t;
  uv_loop_t *loop;
  int fd = -1, err;
  CHECK(napi_get_new_target(env, info, &target));
  if (!target) { napi_throw_type_error(env, NULL, "SeqpacketSocket must be called with new"); return NULL; }
  CHECK(napi_get_uv_event_loop(env, &loop));
  if (!args_parse(env, info, "s", &a) || napi_typeof(env, a.argv[1], &t) != napi_ok) return args_free(&a, NULL);
  owner = t == napi_object ? a.argv[1] : a.self;
  if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0 || (err = connect_unix(fd, a.str[0]))) {
    throw_errno(env, fd < 0 ? errno : err, fd < 0 ? "socket" : "connect", a.str[0]);
    if (fd >= 0) close(fd);
    return args_free(&a, NULL);
  }
  sock_t *s = calloc(1, sizeof *s);
  if ((err = s ? uv_poll_init(loop, &s->poll, fd) : UV_ENOMEM) != 0) {
    close(fd);
    free(s);
    throw_errno(env, -err, "connect", a.str[0]);
    return args_free(&a, NULL);
  }
  s->env = env; s->fd = fd; s->path = a.str[0]; s->poll.data = s; s->handle_open = true;
  a.str[0] = NULL; /* now owned by s */
  if (napi_wrap(env, a.self, s, sock_finalize, NULL, &s->self) != napi_ok) {
    s->finalized = true; /* no finalizer will run: free on handle close */
    stop_io(s);
    return fail(env);
  }
  s->self_held = napi_reference_ref(env, s->self, NULL) == napi_ok;
  if (napi_create_reference(env, owner, 1, &s->owner) != napi_ok ||
      napi_create_string_utf8(env, "VesselSeqpacketSocket", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, owner, name, &s->actx) != napi_ok ||
      napi_add_async_cleanup_hook(env, on_env_cleanup, s, &s->cleanup) != napi_ok) {
    fail(env);
    stop_io(s);
    release_js(s);
    return NULL;
  }
  update_poll(s);
  return a.self;
}

static sock_t *sock_of(napi_env env, napi_callback_info info, const char *spec, args_t *a) {
  void *s = NULL;
  if (!args_parse(env, info, spec, a)) return NULL;
  if (napi_unwrap(env, a->self, &s) != napi_ok) fail(env);
  return s;
}

/* Returns true if sent now, false if queued behind earlier writes or EAGAIN. */
static napi_value sock_write(napi_env env, napi_callback_info info) {
  args_t a;
  napi_value ret = NULL;
  int err;
  sock_t *s = sock_of(env, info, "b", &a);
  if (!s) return args_free(&a, NULL);
  if (s->fd < 0 || s->shut_req) return args_free(&a, throw_errno(env, s->fd < 0 ? EBADF : EPIPE, "send", s->path));
  err = s->head ? EAGAIN : send_one(s, a.data[0], a.len[0]);
  /* Connection-level failures surface through onClose, as with net.Socket:
   * queueing the message makes the writable poll (HUP) report them. */
  if (err && err != EAGAIN && err != EPIPE && err != ECONNRESET && err != ENOTCONN)
    return args_free(&a, throw_errno(env, err, "send", s->path));
  if (err) {
    wmsg *m = malloc(sizeof *m + a.len[0]);
    if (!m) return args_free(&a, throw_errno(env, ENOMEM, "send", s->path));
    m->next = NULL;
    m->len = a.len[0];
    memcpy(m->data, a.data[0], a.len[0]);
    if (s->tail) s->tail->next = m; else s->head = m;
    s->tail = m;
    update_poll(s);
  }
  napi_get_boolean(env, err == 0, &ret);
  return args_free(&a, ret);
}

static napi_value sock_shutdown_write(napi_env env, napi_callback_info info) {
  args_t a;
  sock_t *s = sock_of(env, info, "", &a);
  if (!s || s->fd < 0 || s->shut_req) return NULL;
  s->shut_req = true;
  if (s->head) return NULL; /* flush_writes does it once the queue drains */
  s->shut_done = true;
  if (shutdown(s->fd, SHUT_WR) != 0 && errno != ENOTCONN) return throw_errno(env, errno, "shutdown", s->path);
  return NULL;
}

static napi_value sock_close(napi_env env, napi_callback_info info) {
  args_t a;
  sock_t *s = sock_of(env, info, "", &a);
  if (!s) return NULL;
  stop_io(s);
  if (s->depth == 0) release_js(s); /* else on_poll does it after the callback */
  return NULL;
}

static napi_value sock_set_ref(napi_env env, napi_callback_info info) {
  args_t a;
  bool on = true;
  sock_t *s = sock_of(env, info, "", &a);
  if (!s) return NULL;
  napi_get_value_bool(env, a.argv[0], &on);
  if (s->fd >= 0) (on ? uv_ref : uv_unref)((uv_handle_t *)&s->poll);
  return NULL;
}

/* ---------- module ---------- */

static napi_status set_num(napi_env env, napi_value obj, const char *name, double v) {
  napi_value n;
  napi_status st = napi_create_double(env, v, &n);
  return st == napi_ok ? napi_set_named_property(env, obj, name, n) : st;
}

#define METHOD(name, fn) { name, NULL, fn, NULL, NULL, NULL, napi_default, NULL }

NAPI_MODULE_INIT() {
  napi_value ms, cls;
  const napi_property_descriptor fns[] = {
    METHOD("mount", js_mount), METHOD("umount", js_umount), METHOD("umountAsync", js_umount_async), METHOD("mknod", js_mknod),
    METHOD("setxattr", js_setxattr), METHOD("getxattr", js_getxattr),
  };
  const napi_property_descriptor methods[] = {
    METHOD("write", sock_write), METHOD("shutdownWrite", sock_shutdown_write),
    METHOD("close", sock_close), METHOD("setRef", sock_set_ref),
  };
  const struct { const char *name; unsigned long v; } flags[] = {
    { "RDONLY", MS_RDONLY }, { "NOSUID", MS_NOSUID }, { "NODEV", MS_NODEV }, { "NOEXEC", MS_NOEXEC },
    { "REMOUNT", MS_REMOUNT }, { "BIND", MS_BIND }, { "REC", MS_REC }, { "PRIVATE", MS_PRIVATE },
    { "SLAVE", MS_SLAVE }, { "SHARED", MS_SHARED }, { "UNBINDABLE", MS_UNBINDABLE }, { "MOVE", MS_MOVE },
    { "NOATIME", MS_NOATIME }, { "RELATIME", MS_RELATIME }, { "STRICTATIME", MS_STRICTATIME },
  };
  CHECK(napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns));
  CHECK(vn_register_spawn(env, exports));
  CHECK(vn_register_remove_tree(env, exports));
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
