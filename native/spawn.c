/*
 * Starting the daemon's helper processes (conmon) without fork(2).
 *
 * Node's child_process.spawn forks the daemon, and fork copies the page
 * tables of its whole heap: milliseconds of main-thread time per spawn at the
 * daemon's size, on every container start. vfork(2) does not copy: the child
 * borrows the parent's memory (the calling thread waits) until it execs, so
 * the cost does not grow with the daemon.
 *
 * The child gets a new session, default dispositions for every signal, an
 * empty mask and SIGKILL as its parent-death signal. Node ignores SIGPIPE, and an ignored signal survives exec into
 * conmon, the runtime and the container. (glibc's posix_spawn is not used: it
 * leaves its two internal signals, 32 and 33, ignored in the new program.)
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>
#include "vessel_native.h"

#define SPAWN_MAX_FDS 64

static void free_vector(char **v) {
  for (char **p = v; p && *p; p++) free(*p);
  free(v);
}

/* A JS array of strings as a NULL-terminated vector; NULL (exception set) on failure. */
static char **string_vector(napi_env env, napi_value arr, const char *what) {
  uint32_t n = 0;
  bool is_array = false;
  if (napi_is_array(env, arr, &is_array) != napi_ok || !is_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
    return NULL;
  }
  napi_get_array_length(env, arr, &n);
  char **v = calloc((size_t)n + 1, sizeof *v);
  if (!v) { vn_throw_errno(env, ENOMEM, "malloc", what); return NULL; }
  for (uint32_t i = 0; i < n; i++) {
    napi_value s;
    size_t len = 0;
    napi_valuetype t = napi_undefined;
    if (napi_get_element(env, arr, i, &s) == napi_ok) napi_typeof(env, s, &t);
    if (t != napi_string || napi_get_value_string_utf8(env, s, NULL, 0, &len) != napi_ok) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
      free_vector(v);
      return NULL;
    }
    if (!(v[i] = malloc(len + 1))) { vn_throw_errno(env, ENOMEM, "malloc", what); free_vector(v); return NULL; }
    napi_get_value_string_utf8(env, s, v[i], len + 1, &len);
    if (strlen(v[i]) != len) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "strings must not contain NUL bytes");
      free_vector(v);
      return NULL;
    }
  }
  return v;
}

/* The kernel's struct sigaction for rt_sigaction(2); glibc's wrapper refuses signals 32 and 33. */
struct k_sigaction { void *handler; unsigned long flags; void *restorer; uint64_t mask; };

/* Runs in the vfork child, on the parent's memory: raw system calls only, no
 * allocation, and nothing written but `*child_err`. */
static void exec_child(const char *file, char **argv, char **envp, const char *cwd, const int *fds, int nfds,
                       pid_t parent, volatile int *child_err) {
  struct k_sigaction dfl = { .handler = SIG_DFL };
  uint64_t none = 0;
  for (int sig = 1; sig < 65; sig++)
    if (sig != SIGKILL && sig != SIGSTOP) syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof none);
  /* Killed if the daemon dies while this process is still its child: conmon
   * reads end-of-file on its start pipe as a go-ahead, so one left waiting by a
   * killed daemon would create its container unasked. Its daemonized
   * grandchild does not inherit this. */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) goto fail;
  if (setsid() < 0) goto fail;
  for (int i = 0; i < nfds; i++)
    if (dup2(fds[i], i) < 0) goto fail;
  if (chdir(cwd) != 0) goto fail;
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof none);
  execve(file, argv, envp);
fail:
  *child_err = errno;
  _exit(127);
}

/* Returns 0 with *pid set once the child has exec'd, else an errno (the failed child is reaped). */
static int vfork_exec(pid_t *pid, const char *file, char **argv, char **envp, const char *cwd, const int *fds, int nfds) {
  volatile int child_err = 0;
  sigset_t all, old;
  int status;
  /* No handler of the parent's may run in the child while it shares our stack. */
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t parent = getpid();
  pid_t p = vfork();
  if (p == 0) exec_child(file, argv, envp, cwd, fds, nfds, parent, &child_err);
  int err = p < 0 ? errno : child_err;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (p > 0 && err) while (waitpid(p, &status, 0) < 0 && errno == EINTR) {}
  *pid = p;
  return err;
}

/* What a spawn needs, made on the main thread: copies of the strings, and
 * the child's descriptors duplicated above its range (so that no dup2 in the
 * child clobbers a source another one still needs; close-on-exec themselves). */
typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  char *file, *cwd;
  char **args, **envp;
  int fds[SPAWN_MAX_FDS];
  uint32_t nfds;
  pid_t pid;
  int err;
} spawn_job_t;

static void spawn_job_free(spawn_job_t *j) {
  for (uint32_t i = 0; i < j->nfds; i++) if (j->fds[i] >= 0) close(j->fds[i]);
  free_vector(j->args);
  free_vector(j->envp);
  free(j->file);
  free(j->cwd);
  free(j);
}

static char *string_arg(napi_env env, napi_value v) {
  size_t len = 0;
  char *out;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok || !(out = malloc(len + 1))) return NULL;
  napi_get_value_string_utf8(env, v, out, len + 1, &len);
  if (strlen(out) != len) { free(out); return NULL; }
  return out;
}

/* (file, argv, env, cwd, fds[, ...]) -> a job, or NULL with an exception pending. fds[i] is
 * the parent's descriptor that becomes the child's descriptor i; -1 gives /dev/null. */
static spawn_job_t *spawn_prepare(napi_env env, napi_value *argv, size_t argc) {
  spawn_job_t *j = calloc(1, sizeof *j);
  uint32_t nfds = 0;
  int devnull = -1;
  if (!j) { vn_throw_errno(env, ENOMEM, "malloc", "spawn"); return NULL; }
  if (argc < 5 || !(j->file = string_arg(env, argv[0])) || !(j->cwd = string_arg(env, argv[3])) ||
      napi_get_array_length(env, argv[4], &nfds) != napi_ok || nfds > SPAWN_MAX_FDS) {
    spawn_job_free(j);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "spawn(file, argv, env, cwd, fds)");
    return NULL;
  }
  for (uint32_t i = 0; i < nfds; i++) j->fds[i] = -1;
  j->nfds = nfds;
  for (uint32_t i = 0; i < nfds; i++) {
    napi_value v;
    int32_t fd = -1;
    if (napi_get_element(env, argv[4], i, &v) != napi_ok || napi_get_value_int32(env, v, &fd) != napi_ok) {
      spawn_job_free(j);
      if (devnull >= 0) close(devnull);
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "fds must be integers");
      return NULL;
    }
    if (fd < 0) {
      if (devnull < 0 && (devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0) { j->err = errno; break; }
      fd = devnull;
    }
    if ((j->fds[i] = fcntl(fd, F_DUPFD_CLOEXEC, (int)nfds)) < 0) { j->err = errno; break; }
  }
  if (devnull >= 0) close(devnull);
  if (j->err) {
    vn_throw_errno(env, j->err, "spawn", j->file);
    spawn_job_free(j);
    return NULL;
  }
  if (!(j->args = string_vector(env, argv[1], "argv must be an array of strings")) ||
      !(j->envp = string_vector(env, argv[2], "env must be an array of strings"))) {
    spawn_job_free(j);
    return NULL;
  }
  return j;
}

/* spawn(file, argv, env, cwd, fds) -> pid, once the child has exec'd. */
static napi_value js_spawn(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], result = NULL;
  spawn_job_t *j;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || !(j = spawn_prepare(env, argv, argc))) return NULL;
  int err = vfork_exec(&j->pid, j->file, j->args, j->envp, j->cwd, j->fds, (int)j->nfds);
  if (err) vn_throw_errno(env, err, "spawn", j->file);
  else napi_create_int32(env, j->pid, &result);
  spawn_job_free(j);
  return result;
}

/* On a thread-pool thread: vfork suspends only that thread until the child
 * has exec'd, so the event loop goes on meanwhile. The child's parent-death
 * signal then follows that thread, which lives as long as the process. */
static void spawn_job_execute(napi_env env, void *data) {
  spawn_job_t *j = data;
  j->err = vfork_exec(&j->pid, j->file, j->args, j->envp, j->cwd, j->fds, (int)j->nfds);
}

static void spawn_job_complete(napi_env env, napi_status status, void *data) {
  spawn_job_t *j = data;
  napi_value pid;
  int err = status == napi_ok ? j->err : EIO;
  if (!err && napi_create_int32(env, j->pid, &pid) == napi_ok) napi_resolve_deferred(env, j->deferred, pid);
  else vn_settle(env, j->deferred, err ? err : EIO, "spawn", j->file);
  napi_delete_async_work(env, j->work);
  spawn_job_free(j);
}

/* spawnAsync(file, argv, env, cwd, fds) -> Promise<pid>: spawn() on a thread-pool thread.
 * The caller may close its own copies of fds at once. */
static napi_value js_spawn_async(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], promise = NULL, name;
  spawn_job_t *j;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || !(j = spawn_prepare(env, argv, argc))) return NULL;
  if (napi_create_promise(env, &j->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, "spawn", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, spawn_job_execute, spawn_job_complete, j, &j->work) != napi_ok ||
      napi_queue_async_work(env, j->work) != napi_ok) {
    spawn_job_free(j);
    return vn_throw_errno(env, EIO, "spawn", "queue");
  }
  return promise;
}

/* reap(pid) -> exit code (128 + signal when killed), or null while it runs. */
static napi_value js_reap(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result = NULL;
  int32_t pid = 0;
  int status = 0;
  pid_t r;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_int32(env, argv[0], &pid) != napi_ok || pid <= 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "reap(pid)");
    return NULL;
  }
  do r = waitpid(pid, &status, WNOHANG); while (r < 0 && errno == EINTR);
  if (r < 0) return vn_throw_errno(env, errno, "waitpid", "child");
  if (r == 0) napi_get_null(env, &result);
  else napi_create_int32(env, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), &result);
  return result;
}

/* pipe(nonblockingRead?) -> [read end, write end], both close-on-exec; the
 * read end optionally non-blocking (read what is there without a stream). */
static napi_value js_pipe(napi_env env, napi_callback_info info) {
  int fds[2];
  size_t argc = 1;
  bool nonblock = false;
  napi_value arr, v, argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc >= 1) napi_get_value_bool(env, argv[0], &nonblock);
  if (pipe2(fds, O_CLOEXEC) != 0) return vn_throw_errno(env, errno, "pipe", "");
  if (nonblock && fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK) != 0) {
    int err = errno;
    close(fds[0]);
    close(fds[1]);
    return vn_throw_errno(env, err, "fcntl", "");
  }
  if (napi_create_array_with_length(env, 2, &arr) != napi_ok) { close(fds[0]); close(fds[1]); return NULL; }
  for (uint32_t i = 0; i < 2; i++) {
    napi_create_int32(env, fds[i], &v);
    napi_set_element(env, arr, i, v);
  }
  return arr;
}

/* ---------- watchExit: a callback when a process (not only a child) exits ---------- */

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref cb;
  napi_async_context actx;
  int fd;
} exit_watch_t;

static void exit_watch_closed(uv_handle_t *h) {
  exit_watch_t *w = h->data;
  close(w->fd);
  free(w);
}

/* The pidfd turns readable once the process has exited (before it is reaped). */
static void on_exit_ready(uv_poll_t *h, int status, int events) {
  exit_watch_t *w = h->data;
  napi_env env = w->env;
  napi_handle_scope scope;
  napi_value cb, recv, ignored;
  (void)status;
  (void)events;
  uv_poll_stop(h);
  if (napi_open_handle_scope(env, &scope) == napi_ok) {
    /* Through make_callback, so that promise reactions run right after. */
    if (napi_get_reference_value(env, w->cb, &cb) == napi_ok && napi_get_global(env, &recv) == napi_ok)
      napi_make_callback(env, w->actx, recv, cb, 0, NULL, &ignored);
    napi_close_handle_scope(env, scope);
  }
  napi_delete_reference(env, w->cb);
  napi_async_destroy(env, w->actx);
  uv_close((uv_handle_t *)h, exit_watch_closed);
}

/* watchExit(pid, cb) -> boolean: cb() once `pid` has exited, through a pidfd
 * polled on the event loop (which it does not keep alive). False, and cb is
 * never called, when the process is already gone or the kernel has no pidfds. */
static napi_value js_watch_exit(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], name, result;
  napi_valuetype t;
  int32_t pid = 0;
  uv_loop_t *loop;
  exit_watch_t *w;
  int fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_int32(env, argv[0], &pid) != napi_ok || pid <= 0 ||
      napi_typeof(env, argv[1], &t) != napi_ok || t != napi_function) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "watchExit(pid, callback)");
    return NULL;
  }
  fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0); /* a pidfd is close-on-exec */
  if (fd < 0) {
    napi_get_boolean(env, false, &result);
    return result;
  }
  if (!(w = calloc(1, sizeof *w))) {
    close(fd);
    return vn_throw_errno(env, ENOMEM, "pidfd_open", "");
  }
  w->env = env;
  w->fd = fd;
  w->poll.data = w;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || uv_poll_init(loop, &w->poll, fd) != 0) {
    close(fd);
    free(w);
    return vn_throw_errno(env, EIO, "pidfd_open", "poll");
  }
  if (napi_create_reference(env, argv[1], 1, &w->cb) != napi_ok ||
      napi_create_string_utf8(env, "vessel.watchExit", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, NULL, name, &w->actx) != napi_ok || uv_poll_start(&w->poll, UV_READABLE, on_exit_ready) != 0) {
    if (w->cb) napi_delete_reference(env, w->cb);
    uv_close((uv_handle_t *)&w->poll, exit_watch_closed);
    return vn_throw_errno(env, EIO, "pidfd_open", "poll");
  }
  uv_unref((uv_handle_t *)&w->poll);
  napi_get_boolean(env, true, &result);
  return result;
}

napi_status vn_register_spawn(napi_env env, napi_value exports) {
  const napi_property_descriptor fns[] = {
    { "spawn", NULL, js_spawn, NULL, NULL, NULL, napi_default, NULL },
    { "spawnAsync", NULL, js_spawn_async, NULL, NULL, NULL, napi_default, NULL },
    { "reap", NULL, js_reap, NULL, NULL, NULL, napi_default, NULL },
    { "pipe", NULL, js_pipe, NULL, NULL, NULL, napi_default, NULL },
    { "watchExit", NULL, js_watch_exit, NULL, NULL, NULL, napi_default, NULL },
  };
  return napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns);
}
