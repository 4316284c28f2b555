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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "vessel_native.h"

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  char *path;
  int err;
} tree_job_t;

/* nftw's callback has no user pointer; each thread-pool thread runs one walk at a time. */
static __thread int walk_err;

static int remove_entry(const char *p, const struct stat *st, int type, struct FTW *ftw) {
  int r = (type == FTW_DP || type == FTW_D) ? rmdir(p) : unlink(p);
  if (r != 0 && errno != ENOENT && !walk_err) walk_err = errno;
  return 0; /* go on: remove as much as possible */
}

static void tree_execute(napi_env env, void *data) {
  tree_job_t *j = data;
  walk_err = 0;
  if (nftw(j->path, remove_entry, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) != 0 && errno != ENOENT) j->err = errno;
  else j->err = walk_err;
}

static void tree_complete(napi_env env, napi_status status, void *data) {
  tree_job_t *j = data;
  napi_value v = NULL;
  if (status == napi_ok && !j->err && napi_get_undefined(env, &v) == napi_ok) {
    napi_resolve_deferred(env, j->deferred, v);
  } else {
    char *msg = NULL;
    napi_value m;
    int err = j->err ? j->err : EIO;
    if (asprintf(&msg, "remove %s: %s", j->path, strerror(err)) >= 0 &&
        napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m) == napi_ok &&
        napi_create_error(env, NULL, m, &v) == napi_ok) {
      napi_reject_deferred(env, j->deferred, v);
    } else {
      napi_get_undefined(env, &v);
      napi_reject_deferred(env, j->deferred, v);
    }
    free(msg);
  }
  napi_delete_async_work(env, j->work);
  free(j->path);
  free(j);
}

static napi_value js_remove_tree(napi_env env, napi_callback_info info) {
  size_t argc = 1, len = 0;
  napi_value argv[1], promise = NULL, name;
  tree_job_t *j;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_string_utf8(env, argv[0], NULL, 0, &len) != napi_ok || len == 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "removeTree(path)");
    return NULL;
  }
  if (!(j = calloc(1, sizeof *j)) || !(j->path = malloc(len + 1))) {
    free(j);
    return vn_throw_errno(env, ENOMEM, "removeTree", "");
  }
  napi_get_value_string_utf8(env, argv[0], j->path, len + 1, &len);
  if (strlen(j->path) != len || j->path[0] != '/') {
    free(j->path);
    free(j);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "removeTree needs an absolute path without NUL bytes");
    return NULL;
  }
  if (napi_create_promise(env, &j->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, "vessel:removeTree", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, tree_execute, tree_complete, j, &j->work) != napi_ok ||
      napi_queue_async_work(env, j->work) != napi_ok) {
    free(j->path);
    free(j);
    return NULL;
  }
  return promise;
}

napi_status vn_register_remove_tree(napi_env env, napi_value exports) {
  const napi_property_descriptor fns[] = {
    { "removeTree", NULL, js_remove_tree, NULL, NULL, NULL, napi_default, NULL },
  };
  return napi_define_properties(env, exports, 1, fns);
}
