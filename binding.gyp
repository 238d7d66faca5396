{
  # The node-gyp route: the same sources as CMakeLists.txt (native/**/*.cpp), the same libtorch discovery
  # (scripts/find-libtorch.js). No precompiled header here, so it compiles more slowly.
  "targets": [
    {
      "target_name": "resnet_torch",
      "sources": ["<!@(node scripts/native-sources.js)"],
      "include_dirs": [
        "native",
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node scripts/find-libtorch.js --gyp-includes)"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "<!@(node scripts/find-libtorch.js --gyp-defines)"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++14", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-O2", "-Wno-unused-parameter", "-idirafter", "<(module_root_dir)/native/compat"],
      "ldflags": ["<!@(node scripts/find-libtorch.js --gyp-ldflags)"],
      "libraries": ["<!@(node scripts/find-libtorch.js --gyp-libs)"]
    }
  ]
}
