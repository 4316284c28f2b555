/* Shared between the addon's source files. */
#ifndef VESSEL_NATIVE_H
#define VESSEL_NATIVE_H
#include <node_api.h>

/* Throws an Error shaped like Node's system errors (.code, .errno, .syscall, .path); returns NULL. */
napi_value vn_throw_errno(napi_env env, int err, const char *syscall, const char *path);

/* spawn.c: spawn(), reap(), pipe(). */
napi_status vn_register_spawn(napi_env env, napi_value exports);

/* remove-tree.c: removeTree(). */
napi_status vn_register_remove_tree(napi_env env, napi_value exports);

#endif
