/* Shared between the addon's source files. */
#ifndef VESSEL_NATIVE_H
#define VESSEL_NATIVE_H
#include <node_api.h>

/* Throws an Error shaped like Node's system errors (.code, .errno, .syscall, .path); returns NULL. */
napi_value vn_throw_errno(napi_env env, int err, const char *syscall, const char *path);

/* Resolves `deferred` (err 0) or rejects it with such an error. */
void vn_settle(napi_env env, napi_deferred deferred, int err, const char *syscall, const char *path);

/* Runs op(path, flags) on a thread-pool thread; the promise settles with its result (0 or an errno). */
typedef int (*vn_path_op)(const char *path, int flags);
napi_value vn_queue_path_op(napi_env env, const char *path, int flags, vn_path_op op, const char *syscall);

/* spawn.c: spawn(), reap(), pipe(). */
napi_status vn_register_spawn(napi_env env, napi_value exports);

/* remove-tree.c: removeTree(). */
napi_status vn_register_remove_tree(napi_env env, napi_value exports);

#endif
