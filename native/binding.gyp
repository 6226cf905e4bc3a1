# The proxy listener's native helper; see src/trellis_net.c for what it does and why.
# Built from the repository root with `npm run build:native`; optional: when it is
# missing, src/proxy/listener/fast-accept.ts uses the portable node:net listener.
{
  "targets": [
    {
      "target_name": "trellis_net",
      "sources": ["src/trellis_net.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags_c": ["-std=gnu11", "-Wall", "-O2"]
    }
  ]
}
