/*
 * trellis_net: the proxy listener's native helper (Linux only; N-API, so one build works
 * on every Node version of the same platform).
 *
 * Why it exists (shared/reference/proxy-perf-notes.md, "Many new connections"): Node 20's
 * libuv accepts one connection per event-loop turn, so when 1,000 clients connect at once
 * the last ones wait seconds for their turn. Here the listening socket is created
 * natively, watched by a libuv poll handle on Node's own loop, and each time it is
 * readable everything pending is accepted with accept4() and handed to JavaScript in one
 * call; src/proxy/listener/fast-accept.ts wraps each fd in `new net.Socket({ fd })`.
 * It also reads SO_ORIGINAL_DST, which Node cannot (transparent capture: iptables/nft
 * REDIRECT rewrites the destination; conntrack remembers the original).
 *
 * Exports (all synchronous, main/worker JS thread only):
 *   listen(host, port, backlog) -> { fd, port }   non-blocking, CLOEXEC, SO_REUSEADDR; host
 *                                                  is an IPv4/IPv6 literal ("::" is dual-stack)
 *   watch(listenFd, onFds) -> watcher             onFds(fds: number[]) once per readable event
 *   unwatch(watcher)                              stop watching; call before close(listenFd)
 *   acceptAll(listenFd) -> number[]               drain once, without a watcher
 *   originalDst(fd) -> { address, port } | null   null when the connection was not NATed
 *   peerName(fd) -> { address, port } | null      getpeername(), for callers that need it
 *   noDelay(fd) -> boolean | null                  TCP_NODELAY as the kernel has it (null: not TCP)
 *   keepalive(fd, idleS, intervalS, probes) -> bool SO_KEEPALIVE on, with TCP_KEEPIDLE/KEEPINTVL/
 *                                                  KEEPCNT where > 0 (0: the OS default); false on error
 *   keepaliveOf(fd) -> [on, idleS, intervalS, probes] | null   as the kernel has them
 *   close(fd)
 *   mallocTrim() -> boolean                       glibc malloc_trim(0): returns the C heap's free
 *                                                  pages to the OS (false: nothing released, or not glibc)
 * Errors from listen() are thrown with Node-style `code` values (EADDRINUSE, ...).
 */
#if !defined(__linux__)
#error "trellis_net needs accept4() and SO_ORIGINAL_DST (Linux); the portable listener is used instead"
#endif

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <node_api.h>
#include <uv.h>

/* Values from <linux/netfilter_ipv4.h> and <linux/netfilter_ipv6/ip6_tables.h> (kernel
 * ABI); those headers clash with glibc's <netinet/in.h>. */
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

/* Bounds one callback's work. The poll is level-triggered, so connections left in the
 * queue make the fd readable again and are taken on the next loop turn. */
#define MAX_ACCEPT_BATCH 1024

#define NAPI_CALL(call) do { if ((call) != napi_ok) return NULL; } while (0)

/* ---- accepting ---------------------------------------------------------------------- */

/* libuv's EMFILE trick (uv__emfile_trick), which net.Server also gets: out of fds, the
 * queue cannot be drained and the level-triggered poll would spin, so give up a spare fd,
 * accept and close what is pending, and take the spare back. */
static void shed_pending(int lfd, int *reserve_fd) {
  if (*reserve_fd < 0) return;
  close(*reserve_fd);
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd >= 0) close(fd);
    else if (errno != EINTR && errno != ECONNABORTED) break;
  }
  *reserve_fd = open("/", O_RDONLY | O_CLOEXEC);
}

/* Accepts up to `cap` pending connections into `fds`; returns how many. */
static int drain(int lfd, int *fds, int cap, int *reserve_fd) {
  int n = 0;
  while (n < cap) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      fds[n++] = fd;
      continue;
    }
    switch (errno) {
      /* This connection failed, the next may not: accept(2) "Error handling" lists the
       * network errors Linux passes on from a pending connection; EPERM is a firewall. */
      case EINTR: case ECONNABORTED: case EPERM: case EPROTO: case ENOPROTOOPT:
      case ENETDOWN: case ENETUNREACH: case EHOSTDOWN: case EHOSTUNREACH: case ENONET:
      case EOPNOTSUPP:
        continue;
      case EMFILE: case ENFILE:
        if (reserve_fd != NULL) shed_pending(lfd, reserve_fd);
        return n;
      default: /* EAGAIN: the queue is empty; ENOBUFS/ENOMEM: try again next turn */
        return n;
    }
  }
  return n;
}

static napi_value fd_array(napi_env env, const int *fds, int n) {
  napi_value arr, v;
  NAPI_CALL(napi_create_array_with_length(env, (size_t)n, &arr));
  for (int i = 0; i < n; i++) {
    NAPI_CALL(napi_create_int32(env, fds[i], &v));
    NAPI_CALL(napi_set_element(env, arr, (uint32_t)i, v));
  }
  return arr;
}

/* ---- watching: a uv_poll_t on Node's loop --------------------------------------------
 *
 * Readability comes from libuv itself: a uv_poll_t on the listening fd joins the same
 * epoll set as every Node socket, so there is no thread, no busy loop and no extra
 * wake-up. Its callback runs on the JS thread between JS turns, where no handle scope or
 * callback scope is open: it opens a handle scope and calls JS with napi_make_callback,
 * which (unlike napi_call_function) enters a callback scope, so process.nextTick and
 * promise jobs queued by the new sockets run before the loop goes on, as after any
 * libuv-driven callback. A JS exception becomes an uncaught exception
 * (napi_fatal_exception), as a throwing 'connection' listener does.
 *
 * Ownership: the watcher is freed when both its JS handle (an external) has been
 * collected and its uv handle has been closed, so a late or repeated unwatch() is safe. */
typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref on_fds;
  napi_async_context async;
  int fd;
  int reserve_fd;
  int closing;
  int owners;
} watcher_t;

static void release(watcher_t *w) {
  if (--w->owners == 0) free(w);
}

static void on_poll_closed(uv_handle_t *handle) {
  watcher_t *w = handle->data;
  if (w->reserve_fd >= 0) close(w->reserve_fd);
  release(w);
}

/* uv_close() takes the fd out of epoll synchronously, so the caller may close(fd) next. */
static void stop_watching(watcher_t *w) {
  w->closing = 1;
  uv_close((uv_handle_t *)&w->poll, on_poll_closed);
}

/* A worker thread ending with a listener open: Node aborts on a loop with open handles. */
static void on_env_teardown(void *arg) {
  watcher_t *w = arg;
  if (!w->closing) stop_watching(w);
}

static void on_external_collected(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  release(data);
}

static void on_readable(uv_poll_t *poll, int status, int events) {
  watcher_t *w = poll->data;
  napi_env env = w->env;
  int fds[MAX_ACCEPT_BATCH];
  (void)events;
  if (status < 0) return; /* POLLERR: libuv has already stopped the handle */
  int n = drain(w->fd, fds, MAX_ACCEPT_BATCH, &w->reserve_fd);
  if (n == 0) return;

  napi_handle_scope scope;
  napi_value arr, fn, recv;
  if (napi_open_handle_scope(env, &scope) != napi_ok) goto lost;
  if ((arr = fd_array(env, fds, n)) == NULL ||
      napi_get_reference_value(env, w->on_fds, &fn) != napi_ok ||
      napi_get_global(env, &recv) != napi_ok) {
    napi_close_handle_scope(env, scope);
    goto lost;
  }
  /* From here JS owns the fds. */
  if (napi_make_callback(env, w->async, recv, fn, 1, &arr, NULL) == napi_pending_exception) {
    napi_value err;
    if (napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
  }
  napi_close_handle_scope(env, scope);
  return;
lost:
  for (int i = 0; i < n; i++) close(fds[i]);
}

/* ---- helpers ------------------------------------------------------------------------ */

static int arg_fd(napi_env env, napi_value v, int *fd) {
  int32_t x;
  if (napi_get_value_int32(env, v, &x) != napi_ok || x < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "fd must be a non-negative integer");
    return 0;
  }
  *fd = x;
  return 1;
}

static napi_value throw_errno(napi_env env, const char *syscall, int err, const char *host, int port) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s %s: %s %s:%d", syscall, uv_err_name(-err), uv_strerror(-err), host, port);
  napi_throw_error(env, uv_err_name(-err), msg);
  return NULL;
}

/* { address, port } from a sockaddr_in/sockaddr_in6 */
static napi_value address_object(napi_env env, const struct sockaddr_storage *ss) {
  char text[INET6_ADDRSTRLEN];
  int port;
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
    inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text);
    port = ntohs(sin->sin_port);
  } else if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
    inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof text);
    port = ntohs(sin6->sin6_port);
  } else {
    return NULL;
  }
  napi_value obj, address, port_v;
  NAPI_CALL(napi_create_object(env, &obj));
  NAPI_CALL(napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &address));
  NAPI_CALL(napi_create_int32(env, port, &port_v));
  NAPI_CALL(napi_set_named_property(env, obj, "address", address));
  NAPI_CALL(napi_set_named_property(env, obj, "port", port_v));
  return obj;
}

static napi_value null_value(napi_env env) {
  napi_value v;
  napi_get_null(env, &v);
  return v;
}

/* ---- exports ------------------------------------------------------------------------ */

static napi_value js_listen(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  char host[INET6_ADDRSTRLEN];
  int32_t port, backlog;
  NAPI_CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3 ||
      napi_get_value_string_utf8(env, argv[0], host, sizeof host, NULL) != napi_ok ||
      napi_get_value_int32(env, argv[1], &port) != napi_ok || port < 0 || port > 65535 ||
      napi_get_value_int32(env, argv[2], &backlog) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "listen(host: string, port: 0..65535, backlog: number)");
    return NULL;
  }
  struct sockaddr_storage ss;
  socklen_t len;
  memset(&ss, 0, sizeof ss);
  struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
  if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    len = sizeof *sin;
  } else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)port);
    len = sizeof *sin6;
  } else {
    napi_throw_type_error(env, "ERR_INVALID_IP_ADDRESS", "listen: host must be an IPv4 or IPv6 address literal");
    return NULL;
  }

  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno, host, port);
  int one = 1, zero = 0;
  const char *syscall = "setsockopt";
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) goto fail;
  /* "::" accepts IPv4 too, as node:net's listen does by default */
  if (ss.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) != 0) goto fail;
  syscall = "bind";
  if (bind(fd, (struct sockaddr *)&ss, len) != 0) goto fail;
  syscall = "listen";
  if (listen(fd, backlog) != 0) goto fail;
  syscall = "getsockname";
  len = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) goto fail;

  napi_value result, fd_v, port_v;
  int bound = ntohs(ss.ss_family == AF_INET ? sin->sin_port : sin6->sin6_port);
  if (napi_create_object(env, &result) != napi_ok ||
      napi_create_int32(env, fd, &fd_v) != napi_ok ||
      napi_create_int32(env, bound, &port_v) != napi_ok ||
      napi_set_named_property(env, result, "fd", fd_v) != napi_ok ||
      napi_set_named_property(env, result, "port", port_v) != napi_ok) {
    close(fd);
    return NULL;
  }
  return result;
fail:;
  int err = errno;
  close(fd);
  return throw_errno(env, syscall, err, host, port);
}

static napi_value js_watch(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], name, external;
  napi_valuetype type;
  uv_loop_t *loop;
  int fd;
  NAPI_CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || !arg_fd(env, argv[0], &fd)) return NULL;
  NAPI_CALL(napi_typeof(env, argv[1], &type));
  if (type != napi_function) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "watch(fd, onFds): onFds must be a function");
    return NULL;
  }
  NAPI_CALL(napi_get_uv_event_loop(env, &loop));
  NAPI_CALL(napi_create_string_utf8(env, "TRELLIS_ACCEPT", NAPI_AUTO_LENGTH, &name));

  watcher_t *w = calloc(1, sizeof *w);
  if (w == NULL) return throw_errno(env, "watch", ENOMEM, "fd", fd);
  w->env = env;
  w->fd = fd;
  w->owners = 2;
  int err = uv_poll_init(loop, &w->poll, fd);
  if (err != 0) {
    free(w);
    return throw_errno(env, "uv_poll_init", -err, "fd", fd);
  }
  w->poll.data = w;
  w->reserve_fd = open("/", O_RDONLY | O_CLOEXEC);
  if (napi_create_reference(env, argv[1], 1, &w->on_fds) != napi_ok ||
      napi_async_init(env, NULL, name, &w->async) != napi_ok ||
      napi_create_external(env, w, on_external_collected, NULL, &external) != napi_ok) {
    w->owners = 1; /* no external: only the uv handle holds it (refs go with the env) */
    stop_watching(w);
    return NULL;
  }
  napi_add_env_cleanup_hook(env, on_env_teardown, w);
  uv_poll_start(&w->poll, UV_READABLE, on_readable);
  return external;
}

static napi_value js_unwatch(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  watcher_t *w;
  NAPI_CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_get_value_external(env, argv[0], (void **)&w) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "unwatch(watcher): not a watcher");
    return NULL;
  }
  if (!w->closing) {
    napi_remove_env_cleanup_hook(env, on_env_teardown, w);
    napi_delete_reference(env, w->on_fds);
    napi_async_destroy(env, w->async);
    stop_watching(w);
  }
  return NULL;
}

static napi_value js_accept_all(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int fd, fds[MAX_ACCEPT_BATCH];
  NAPI_CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || !arg_fd(env, argv[0], &fd)) return NULL;
  int n = drain(fd, fds, MAX_ACCEPT_BATCH, NULL);
  napi_value arr = fd_array(env, fds, n);
  if (arr == NULL) for (int i = 0; i < n; i++) close(fds[i]);
  return arr;
}

static napi_value js_original_dst(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int fd;
  NAPI_CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || !arg_fd(env, argv[0], &fd)) return NULL;
  struct sockaddr_storage local, dst;
  socklen_t len = sizeof local;
  if (getsockname(fd, (struct sockaddr *)&local, &len) != 0) return null_value(env);
  /* An IPv4 client on a dual-stack "::" listener has an IPv4 conntrack entry; SOL_IP
   * options work on AF_INET6 sockets (ipv6_getsockopt passes them to ip_getsockopt). */
  int v4 = local.ss_family == AF_INET ||
           (local.ss_family == AF_INET6 &&
            IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&local)->sin6_addr));
  len = sizeof dst;
  memset(&dst, 0, sizeof dst);
  int rc = v4 ? getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst, &len)
              : getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &dst, &len);
  /* ENOENT: no NAT entry (not redirected); ENOPROTOOPT: conntrack not loaded */
  if (rc != 0) return null_value(env);
  napi_value obj = address_object(env, &dst);
  return obj != NULL ? obj : null_value(env);
}

static napi_value js_peer_name(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int fd;
  NAPI_CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || !arg_fd(env, argv[0], &fd)) return NULL;
  struct sockaddr_storage peer;
  socklen_t len = sizeof peer;
  if (getpeername(fd, (struct sockaddr *)&peer, &len) != 0) return null_value(env);
  napi_value obj = address_object(env, &peer);
  return obj != NULL ? obj : null_value(env);
}

/* For the tests: Node 20 records `noDelay` for a socket made from an fd without applying
 * it, so only the kernel can say whether Nagle is really off on an accepted connection. */
static napi_value js_no_delay(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  int fd, on = 0;
  socklen_t len = sizeof on;
  NAPI_CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || !arg_fd(env, argv[0], &fd)) return NULL;
  if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len) != 0) return null_value(env);
  NAPI_CALL(napi_get_boolean(env, on != 0, &result));
  return result;
}

/* Envoy's upstream_connection_options.tcp_keepalive; Node can set only SO_KEEPALIVE and the idle time. */
static napi_value js_keepalive(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], result;
  int fd, on = 1, ok = 1;
  int32_t v[3] = {0, 0, 0};
  NAPI_CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4 || !arg_fd(env, argv[0], &fd)) return NULL;
  for (int i = 0; i < 3; i++) {
    if (napi_get_value_int32(env, argv[i + 1], &v[i]) != napi_ok || v[i] < 0) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "keepalive settings must be non-negative integers");
      return NULL;
    }
  }
  if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on) != 0) ok = 0;
  if (ok && v[0] > 0 && setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &v[0], sizeof v[0]) != 0) ok = 0;
  if (ok && v[1] > 0 && setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &v[1], sizeof v[1]) != 0) ok = 0;
  if (ok && v[2] > 0 && setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &v[2], sizeof v[2]) != 0) ok = 0;
  NAPI_CALL(napi_get_boolean(env, ok, &result));
  return result;
}

static napi_value js_keepalive_of(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result, item;
  int fd, v[4];
  socklen_t len = sizeof(int);
  NAPI_CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || !arg_fd(env, argv[0], &fd)) return NULL;
  if (getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &v[0], &len) != 0 ||
      getsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &v[1], &len) != 0 ||
      getsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &v[2], &len) != 0 ||
      getsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &v[3], &len) != 0) return null_value(env);
  NAPI_CALL(napi_create_array_with_length(env, 4, &result));
  for (uint32_t i = 0; i < 4; i++) {
    NAPI_CALL(napi_create_int32(env, i == 0 ? (v[0] != 0) : v[i], &item));
    NAPI_CALL(napi_set_element(env, result, i, item));
  }
  return result;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int fd;
  NAPI_CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || !arg_fd(env, argv[0], &fd)) return NULL;
  close(fd); /* on Linux the fd is released even when close() reports an error */
  return NULL;
}

/* Start-up (parsing modules, compiling, loading the first configuration) leaves free
 * chunks in glibc's heaps that it keeps for reuse; an idle proxy never reuses most of
 * them. malloc_trim(0) gives every arena's free pages back (madvise), which the allocator
 * does by itself only at the top of the main heap. */
static napi_value js_malloc_trim(napi_env env, napi_callback_info info) {
  napi_value result;
  (void)info;
#ifdef __GLIBC__
  NAPI_CALL(napi_get_boolean(env, malloc_trim(0) == 1, &result));
#else
  NAPI_CALL(napi_get_boolean(env, false, &result));
#endif
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"listen", NULL, js_listen, NULL, NULL, NULL, napi_enumerable, NULL},
    {"watch", NULL, js_watch, NULL, NULL, NULL, napi_enumerable, NULL},
    {"unwatch", NULL, js_unwatch, NULL, NULL, NULL, napi_enumerable, NULL},
    {"acceptAll", NULL, js_accept_all, NULL, NULL, NULL, napi_enumerable, NULL},
    {"originalDst", NULL, js_original_dst, NULL, NULL, NULL, napi_enumerable, NULL},
    {"peerName", NULL, js_peer_name, NULL, NULL, NULL, napi_enumerable, NULL},
    {"noDelay", NULL, js_no_delay, NULL, NULL, NULL, napi_enumerable, NULL},
    {"keepalive", NULL, js_keepalive, NULL, NULL, NULL, napi_enumerable, NULL},
    {"keepaliveOf", NULL, js_keepalive_of, NULL, NULL, NULL, napi_enumerable, NULL},
    {"close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL},
    {"mallocTrim", NULL, js_malloc_trim, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  NAPI_CALL(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
