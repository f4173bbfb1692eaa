/* Smoke test of the wasm libssh2 + libcrypto built by scripts/wasm-deps.sh (run by
 * `bash scripts/wasm-deps.sh --check`): links both static libraries with emcc, runs under node and
 * checks that libssh2 initialises, a session can be created, OpenSSL's RNG is seeded (Emscripten's
 * /dev/urandom -> crypto.getRandomValues), a SHA-256 known answer matches, an X25519 key can be
 * generated, and that libssh2 offers the algorithms the browser client relies on. Exit status 0
 * only when every check passes. */
#include <libssh2.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <stdio.h>
#include <string.h>

static int failures = 0;

static void check(int ok, const char* what) {
  printf("  %-52s %s\n", what, ok ? "ok" : "FAILED");
  if (!ok) {
    failures++;
  }
}

/* 1 when `name` is in libssh2's supported list for `method_type`; prints the list once. */
static int offers(LIBSSH2_SESSION* session, int method_type, const char* label, const char* name) {
  const char** algs = NULL;
  int n = libssh2_session_supported_algs(session, method_type, &algs);
  int found = 0;
  if (n <= 0) {
    return 0;
  }
  printf("  %s (%d):", label, n);
  for (int i = 0; i < n; i++) {
    printf(" %s", algs[i]);
    if (strcmp(algs[i], name) == 0) {
      found = 1;
    }
  }
  printf("\n");
  libssh2_free(session, (void*)algs);
  return found;
}

int main(void) {
  printf("wasm-deps smoke: libssh2 %s, %s\n", libssh2_version(0), OpenSSL_version(OPENSSL_VERSION));

  check(libssh2_init(0) == 0, "libssh2_init(0)");
  LIBSSH2_SESSION* session = libssh2_session_init();
  check(session != NULL, "libssh2_session_init()");

  unsigned char random_bytes[32] = {0};
  int nonzero = 0;
  int rand_ok = RAND_bytes(random_bytes, sizeof random_bytes) == 1;
  for (size_t i = 0; i < sizeof random_bytes; i++) {
    nonzero |= random_bytes[i];
  }
  check(rand_ok && nonzero, "RAND_bytes(32) returns seeded bytes");

  /* FIPS 180-2 test vector: SHA-256("abc"). */
  static const unsigned char expected[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
                                             0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
                                             0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
                                             0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
  unsigned char digest[32];
  unsigned int digest_len = 0;
  int sha_ok = EVP_Digest("abc", 3, digest, &digest_len, EVP_sha256(), NULL) == 1 &&
               digest_len == 32 && memcmp(digest, expected, 32) == 0;
  check(sha_ok, "SHA-256(\"abc\") known answer");

  EVP_PKEY* x25519 = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
  check(x25519 != NULL, "X25519 key generation");
  EVP_PKEY_free(x25519);

  if (session != NULL) {
    check(offers(session, LIBSSH2_METHOD_KEX, "kex", "curve25519-sha256"),
          "kex offers curve25519-sha256");
    check(offers(session, LIBSSH2_METHOD_HOSTKEY, "hostkey", "ssh-ed25519"),
          "host keys offer ssh-ed25519");
    check(offers(session, LIBSSH2_METHOD_CRYPT_CS, "cipher", "chacha20-poly1305@openssh.com"),
          "ciphers offer chacha20-poly1305@openssh.com");
    check(offers(session, LIBSSH2_METHOD_MAC_CS, "mac", "hmac-sha2-256-etm@openssh.com"),
          "MACs offer hmac-sha2-256-etm@openssh.com");
    libssh2_session_free(session);
  }
  libssh2_exit();

  printf("wasm-deps smoke: %s\n", failures == 0 ? "all checks passed" : "FAILED");
  return failures == 0 ? 0 : 1;
}
