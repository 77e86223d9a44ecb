# Every dependency comes from Debian 12 packages (scripts/setup installs them).
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(Protobuf REQUIRED)
# librdkafka 2.8 (Debian 13's, backported by scripts/backport-librdkafka):
# Debian 12's 2.0.2 uses protocol versions that Kafka 4 brokers removed.
pkg_check_modules(RDKAFKA IMPORTED_TARGET rdkafka>=2.8.0)
if(NOT RDKAFKA_FOUND)
  message(FATAL_ERROR "librdkafka 2.8.0 or newer is needed (Debian 12 ships 2.0.2): run scripts/setup, "
                      "which backports Debian 13's librdkafka 2.8.0 (scripts/backport-librdkafka)")
endif()
pkg_check_modules(GRPCPP REQUIRED IMPORTED_TARGET grpc++)
# Abseil (libabsl-dev, which gRPC's development package depends on): its
# hash maps and B-trees hold the worker's per-container indexes.
find_package(absl CONFIG REQUIRED)
# HTTP/1.1 and HTTPS for the control room and the probes (Debian's build has
# OpenSSL, zlib and brotli on; its pkg-config flags say so to the header).
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
find_package(OpenSSL REQUIRED)
# Password hashing (argon2id) and constant-time comparison for hub accounts.
pkg_check_modules(SODIUM REQUIRED IMPORTED_TARGET libsodium)
find_package(CLI11 REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(prometheus-cpp CONFIG REQUIRED)
# Server reflection ships without a pkg-config file.
find_library(GRPCPP_REFLECTION_LIBRARY grpc++_reflection REQUIRED)
find_program(GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)
# The boxwatch binary's allocator: jemalloc (Debian's libjemalloc2). With
# glibc's malloc a one-worker drain spent 18 % of its CPU in malloc and free
# (malloc_consolidate, unlink_chunk); with jemalloc 4.5 %, and it ran
# about 10 % more events per CPU-second (bench/README.md). Off for the
# sanitizer presets, whose runtime brings its own allocator.
option(BOXWATCH_JEMALLOC "Link the boxwatch binary with jemalloc" ON)
if(BOXWATCH_JEMALLOC)
  pkg_check_modules(JEMALLOC IMPORTED_TARGET jemalloc)
  if(NOT JEMALLOC_FOUND)
    message(FATAL_ERROR "jemalloc is needed (libjemalloc-dev): run scripts/setup, or configure with -DBOXWATCH_JEMALLOC=OFF")
  endif()
endif()
if(BOXWATCH_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
