#ifndef VEEAMGATEWAY_CHIREDIS_SHIM_H
#define VEEAMGATEWAY_CHIREDIS_SHIM_H

/*
 * hiredis (Debian: libhiredis-dev), its synchronous API only: each connection is used by one
 * dedicated thread of SharedTier's RedisClient, never by an event loop or a cooperative thread.
 * These wrappers hide struct timeval and the reply's void* from Swift.
 */
#include <hiredis/hiredis.h>
#include <sys/time.h>

static inline redisContext *chiredis_connect(const char *host, int port, long timeout_ms) {
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    return redisConnectWithTimeout(host, port, tv);
}

static inline int chiredis_set_timeout(redisContext *c, long timeout_ms) {
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    return redisSetTimeout(c, tv);
}

static inline redisReply *chiredis_command(redisContext *c, int argc, const char **argv, const size_t *argvlen) {
    return (redisReply *)redisCommandArgv(c, argc, argv, argvlen);
}

static inline redisReply *chiredis_get_reply(redisContext *c) {
    void *reply = NULL;
    if (redisGetReply(c, &reply) != REDIS_OK) return NULL;
    return (redisReply *)reply;
}

static inline int chiredis_fd(const redisContext *c) { return c->fd; }
static inline int chiredis_err(const redisContext *c) { return c->err; }
static inline const char *chiredis_errstr(const redisContext *c) { return c->errstr; }

#endif
