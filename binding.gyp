{
  "targets": [
    {
      "target_name": "vessel_native",
      "sources": ["native/vessel_native.c", "native/spawn.c", "native/remove-tree.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
