/*
 * relay.c: the smallest CONNECT proxy we could write in C, as a floor for the tunnel workloads of
 * `npm run bench` (not part of hctunnel). It answers one CONNECT per connection and then copies bytes
 * with blocking read()/write() through a user-space buffer, one thread per direction: nothing a proxy
 * could leave out when it has to see the bytes. With --splice it moves them with splice(2) through a
 * pipe instead, never copying them into user space, which Node's socket API cannot do.
 *
 * Build: gcc -O2 -pthread -o /tmp/relay bench/reference/relay.c
 * Run:   /tmp/relay PORT [--splice] [--buffer BYTES]    (listens on 127.0.0.1 only)
 * Then:  node bench/run.ts --only tunnel-down,tunnel-up --proxy 127.0.0.1:PORT --proxy-pid PID
 * Targets must be IPv4 literals (e.g. CONNECT 127.0.0.1:4000); no DNS, no HTTP, no limits: a test rig.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int use_splice = 0;
static size_t buffer_bytes = 256 * 1024;

struct pump { int from, to; };

static void *pump_run(void *arg) {
  struct pump p = *(struct pump *)arg;
  free(arg);
  if (use_splice) {
    int pipefd[2];
    if (pipe(pipefd) == 0) {
      fcntl(pipefd[1], F_SETPIPE_SZ, (int)buffer_bytes);
      for (;;) {
        ssize_t n = splice(p.from, NULL, pipefd[1], NULL, buffer_bytes, SPLICE_F_MOVE);
        if (n <= 0) break;
        while (n > 0) {
          ssize_t m = splice(pipefd[0], NULL, p.to, NULL, (size_t)n, SPLICE_F_MOVE);
          if (m <= 0) { n = -1; break; }
          n -= m;
        }
        if (n < 0) break;
      }
      close(pipefd[0]);
      close(pipefd[1]);
    }
  } else {
    char *buf = malloc(buffer_bytes);
    for (;;) {
      ssize_t n = read(p.from, buf, buffer_bytes);
      if (n <= 0) break;
      for (ssize_t off = 0; off < n;) {
        ssize_t m = write(p.to, buf + off, (size_t)(n - off));
        if (m <= 0) { n = -1; break; }
        off += m;
      }
      if (n < 0) break;
    }
    free(buf);
  }
  shutdown(p.to, SHUT_WR);
  return NULL;
}

static void *serve(void *arg) {
  int client = (int)(long)arg;
  char head[4096];
  size_t got = 0;
  char *end = NULL;
  while (got < sizeof head - 1 && end == NULL) {
    ssize_t n = read(client, head + got, sizeof head - 1 - got);
    if (n <= 0) { close(client); return NULL; }
    got += (size_t)n;
    head[got] = 0;
    end = strstr(head, "\r\n\r\n");
  }
  char host[256];
  int port = 0;
  if (end == NULL || sscanf(head, "CONNECT %255[0-9.]:%d ", host, &port) != 2) {
    const char *bad = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    (void)!write(client, bad, strlen(bad));
    close(client);
    return NULL;
  }
  struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
  inet_pton(AF_INET, host, &to.sin_addr);
  int origin = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(origin, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(origin, (struct sockaddr *)&to, sizeof to) != 0) {
    const char *bad = "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n";
    (void)!write(client, bad, strlen(bad));
    close(origin);
    close(client);
    return NULL;
  }
  const char *ok = "HTTP/1.1 200 Connection Established\r\n\r\n";
  (void)!write(client, ok, strlen(ok));
  char *rest = end + 4;
  size_t early = got - (size_t)(rest - head);
  if (early > 0) (void)!write(origin, rest, early);
  struct pump *up = malloc(sizeof *up), *down = malloc(sizeof *down);
  *up = (struct pump){ client, origin };
  *down = (struct pump){ origin, client };
  pthread_t t;
  pthread_create(&t, NULL, pump_run, up);
  pump_run(down);
  pthread_join(t, NULL);
  close(origin);
  close(client);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: relay PORT [--splice] [--buffer BYTES]\n"); return 2; }
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--splice") == 0) use_splice = 1;
    else if (strcmp(argv[i], "--buffer") == 0 && i + 1 < argc) buffer_bytes = (size_t)atol(argv[++i]);
  }
  int server = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in at = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])) };
  inet_pton(AF_INET, "127.0.0.1", &at.sin_addr);
  if (bind(server, (struct sockaddr *)&at, sizeof at) != 0 || listen(server, 1024) != 0) { perror("listen"); return 1; }
  fprintf(stderr, "relay listening on 127.0.0.1:%s (%s, %zu-byte buffer)\n", argv[1], use_splice ? "splice" : "read/write", buffer_bytes);
  for (;;) {
    int client = accept(server, NULL, NULL);
    if (client < 0) continue;
    pthread_t t;
    pthread_create(&t, NULL, serve, (void *)(long)client);
    pthread_detach(t);
  }
}
