/*
 * removeTree(path) -> Promise: deletes a directory tree on a thread-pool
 * thread. The daemon discards every removed container's directory; doing
 * that with fs.rm costs the main thread an lstat, an unlink or rmdir and a
 * callback per entry (several milliseconds per container), here it costs
 * one call.
 *
 * It never leaves the tree's file system (FTW_MOUNT) and never follows a
 * symbolic link (FTW_PHYS): whatever is still mounted below is left alone
 * and its mount point then fails to go, which is reported.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <errno.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "vessel_native.h"

/* nftw's callback has no user pointer; each thread-pool thread runs one walk at a time. */
static __thread int walk_err;

static int remove_entry(const char *p, const struct stat *st, int type, struct FTW *ftw) {
  int r = (type == FTW_DP || type == FTW_D) ? rmdir(p) : unlink(p);
  if (r != 0 && errno != ENOENT && !walk_err) walk_err = errno;
  return 0; /* go on: remove as much as possible */
}

static int remove_tree_op(const char *path, int flags) {
  walk_err = 0;
  if (nftw(path, remove_entry, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) != 0 && errno != ENOENT) return errno;
  return walk_err;
}

/* The one string argument of a call, NUL-free (and absolute when `absolute`),
 * as a malloc'd copy; NULL with an exception pending otherwise. */
static char *string_arg(napi_env env, napi_callback_info info, const char *usage, bool absolute, const char *syscall) {
  size_t argc = 1, len = 0;
  napi_value argv[1];
  char *s;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_string_utf8(env, argv[0], NULL, 0, &len) != napi_ok || (absolute && len == 0)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", usage);
    return NULL;
  }
  if (!(s = malloc(len + 1))) {
    vn_throw_errno(env, ENOMEM, syscall, "");
    return NULL;
  }
  napi_get_value_string_utf8(env, argv[0], s, len + 1, &len);
  if (strlen(s) != len || (absolute && s[0] != '/')) {
    free(s);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", absolute ? "an absolute path without NUL bytes is needed" : "no NUL bytes allowed");
    return NULL;
  }
  return s;
}

/* Runs `op` on the call's string argument on a thread-pool thread; the promise settles with its result. */
static napi_value queue_string_op(napi_env env, napi_callback_info info, const char *usage, bool absolute, vn_path_op op, const char *syscall) {
  napi_value promise;
  char *arg = string_arg(env, info, usage, absolute, syscall);
  if (!arg) return NULL;
  promise = vn_queue_path_op(env, arg, 0, op, syscall);
  free(arg);
  return promise;
}

static napi_value js_remove_tree(napi_env env, napi_callback_info info) {
  return queue_string_op(env, info, "removeTree(path)", true, remove_tree_op, "remove");
}

/* The paths of rmdirAll, one per line: each is removed; a missing one counts
 * as removed. The result is the first other errno (the rest are still tried). */
static int rmdir_all_op(const char *list, int flags) {
  int err = 0;
  (void)flags;
  for (const char *p = list; *p;) {
    const char *nl = strchr(p, '\n');
    size_t n = nl ? (size_t)(nl - p) : strlen(p);
    char path[4096];
    if (n >= sizeof path) {
      if (!err) err = ENAMETOOLONG;
    } else {
      memcpy(path, p, n);
      path[n] = 0;
      if (rmdir(path) != 0 && errno != ENOENT && !err) err = errno;
    }
    p += n + (nl ? 1 : 0);
  }
  return err;
}

/* rmdirAll(paths) -> Promise: empty directories (a container's cgroup in every
 * v1 hierarchy) removed in one thread-pool job instead of one syscall each on
 * the main thread or one job each. */
static napi_value js_rmdir_all(napi_env env, napi_callback_info info) {
  return queue_string_op(env, info, "rmdirAll(paths)", false, rmdir_all_op, "rmdir");
}

napi_status vn_register_remove_tree(napi_env env, napi_value exports) {
  const napi_property_descriptor fns[] = {
    { "removeTree", NULL, js_remove_tree, NULL, NULL, NULL, napi_default, NULL },
    { "rmdirAll", NULL, js_rmdir_all, NULL, NULL, NULL, napi_default, NULL },
  };
  return napi_define_properties(env, exports, 2, fns);
}
