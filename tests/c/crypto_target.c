/* crypto_target.c - the crypto of firmware/runtime/crypto on a QEMU board (a firmware/bare
 * program): the RFC test vectors (RFC 7748 sections 5.2 and 6.1, RFC 8439 sections 2.3.2 and
 * 2.4.2, RFC 5869 A.1-A.3) must hold, then one measured call of each primitive between bench
 * markers for the instruction-count plugin (fltiny/bench/bare.py, bench/crypto_cost.py).
 *
 * Exit code: 0 all vectors hold; 10 + i vector i failed (the output names it). Output line:
 * "crypto target: ok stack x25519=A chacha20=B stream=C hkdf=D mask=M baseline=E" with the stack
 * high-water mark (bytes below _estack, this program's frames included) of each measured call
 * and of none (E: this frame plus flt_bench.c's 64-byte unpainted margin), so a call's own
 * stack is about A - E + 64. */
#include <stddef.h>
#include <stdint.h>

#include "bare.h"
#include "core/flt_bytes.h"
#include "crypto/chacha20.h"
#include "crypto/hkdf.h"
#include "crypto/secagg_mask.h"
#include "crypto/x25519.h"
#include "flt_bench.h"

/* marker ids of this program (bench/crypto_cost.py reads the same) */
#define MARK_X25519 1u /* one flt_x25519 scalar multiplication */
#define MARK_BLOCK 2u  /* one flt_chacha20_block */
#define MARK_STREAM 3u /* flt_chacha20_read of STREAM_BLOCKS blocks through the reader */
#define MARK_HKDF 4u   /* flt_hkdf: 32-byte IKM, 8-byte info, 32 bytes out */
#define MARK_MASK 5u   /* flt_secagg_mask: MASK_VALUES values, MASK_PEERS peers */
#define STREAM_BLOCKS 16u
#define MASK_VALUES 256u
#define MASK_PEERS 4u

static uint8_t buf[STREAM_BLOCKS * FLT_CHACHA20_BLOCK_SIZE];
static flt_chacha20_t stream;
static uint32_t values[MASK_VALUES];
static flt_secagg_peer_t peers[MASK_PEERS];

static unsigned nibble(char c)
{
    return c <= '9' ? (unsigned)(c - '0') : (unsigned)(c - 'a' + 10);
}

static void unhex(const char *h, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; ++i) {
        out[i] = (uint8_t)(nibble(h[2 * i]) << 4 | nibble(h[2 * i + 1]));
    }
}

/* 1 when out[0..n-1] is the bytes of hex string h. */
static int equal_hex(const uint8_t *out, const char *h, size_t n)
{
    uint8_t want[128];
    unhex(h, want, n);
    unsigned diff = 0;
    for (size_t i = 0; i < n; ++i) {
        diff |= (unsigned)(out[i] ^ want[i]);
    }
    return diff == 0u;
}

static const char *const X25519_V[][3] = {
    /* RFC 7748 section 5.2 */
    {"a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
     "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
     "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"},
    {"4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
     "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
     "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"},
    /* the iterated function after one iteration: X25519(9, 9) */
    {"0900000000000000000000000000000000000000000000000000000000000000",
     "0900000000000000000000000000000000000000000000000000000000000000",
     "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079"},
};

/* RFC 7748 section 6.1 */
static const char ALICE_SK[] = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
static const char ALICE_PK[] = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
static const char BOB_SK[] = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
static const char BOB_PK[] = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
static const char SHARED[] = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";

/* RFC 8439 sections 2.3.2 and 2.4.2 (key 00 01 .. 1f) */
static const char BLOCK_NONCE[] = "000000090000004a00000000";
static const char BLOCK_OUT[] = "10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e"
                                "d2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e";
static const char ENC_NONCE[] = "000000000000004a00000000";
static const char SUNSCREEN[] = "Ladies and Gentlemen of the class of '99: If I could offer you "
                                "only one tip for the future, sunscreen would be it.";
static const char SUNSCREEN_CT[] =
    "6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0b"
    "f91b65c5524733ab8f593dabcd62b3571639d624e65152ab8f530c359f0861d8"
    "07ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab7793736"
    "5af90bbf74a35be6b40b8eedf2785e42874d";

/* RFC 5869 A.1-A.3: ikm, salt, info (hex), okm length, okm */
typedef struct {
    const char *ikm, *salt, *info;
    size_t ikm_len, salt_len, info_len, okm_len;
    const char *okm;
} hkdf_vector_t;

static const hkdf_vector_t HKDF_V[] = {
    {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "000102030405060708090a0b0c",
     "f0f1f2f3f4f5f6f7f8f9", 22, 13, 10, 42,
     "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"},
    {NULL, NULL, NULL, 80, 80, 80, 82, /* 00..4f, 60..af, b0..ff: filled below */
     "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
     "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
     "cc30c58179ec3e87c14c01d5c1f3434f1d87"},
    {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "", "", 22, 0, 0, 42,
     "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"},
};

static int fail(int code, const char *what)
{
    flt_bare_write("crypto target: FAILED ");
    flt_bare_write(what);
    flt_bare_write("\n");
    return code;
}

static int check_vectors(void)
{
    uint8_t a[32], b[32], out[128];
    for (unsigned i = 0; i < sizeof X25519_V / sizeof X25519_V[0]; ++i) {
        unhex(X25519_V[i][0], a, 32);
        unhex(X25519_V[i][1], b, 32);
        flt_x25519(out, a, b);
        if (!equal_hex(out, X25519_V[i][2], 32)) {
            return fail(10 + (int)i, "RFC 7748 5.2 X25519");
        }
    }
    unhex(ALICE_SK, a, 32);
    flt_x25519_public(out, a);
    if (!equal_hex(out, ALICE_PK, 32)) {
        return fail(13, "RFC 7748 6.1 Alice's public key");
    }
    unhex(BOB_SK, b, 32);
    flt_x25519_public(out, b);
    if (!equal_hex(out, BOB_PK, 32)) {
        return fail(14, "RFC 7748 6.1 Bob's public key");
    }
    uint8_t pk[32];
    unhex(BOB_PK, pk, 32);
    if (flt_x25519_shared(out, a, pk) != FLT_OK || !equal_hex(out, SHARED, 32)) {
        return fail(15, "RFC 7748 6.1 shared secret");
    }
    uint8_t key[32], nonce[12];
    for (unsigned i = 0; i < 32; ++i) {
        key[i] = (uint8_t)i;
    }
    unhex(BLOCK_NONCE, nonce, 12);
    flt_chacha20_block(key, 1, nonce, out);
    if (!equal_hex(out, BLOCK_OUT, 64)) {
        return fail(16, "RFC 8439 2.3.2 block");
    }
    unhex(ENC_NONCE, nonce, 12);
    const size_t n = sizeof SUNSCREEN - 1u;
    flt_chacha20_init(&stream, key, nonce, 1);
    if (flt_chacha20_xor(&stream, (const uint8_t *)SUNSCREEN, out, n) != FLT_OK ||
        !equal_hex(out, SUNSCREEN_CT, n)) {
        return fail(17, "RFC 8439 2.4.2 encryption");
    }
    for (unsigned i = 0; i < sizeof HKDF_V / sizeof HKDF_V[0]; ++i) {
        const hkdf_vector_t *v = &HKDF_V[i];
        uint8_t ikm[80], salt[80], info[80];
        if (v->ikm == NULL) {
            for (unsigned j = 0; j < 80; ++j) {
                ikm[j] = (uint8_t)j;
                salt[j] = (uint8_t)(0x60u + j);
                info[j] = (uint8_t)(0xb0u + j);
            }
        } else {
            unhex(v->ikm, ikm, v->ikm_len);
            unhex(v->salt, salt, v->salt_len);
            unhex(v->info, info, v->info_len);
        }
        if (flt_hkdf(salt, v->salt_len, ikm, v->ikm_len, info, v->info_len, out, v->okm_len) !=
                FLT_OK ||
            !equal_hex(out, v->okm, v->okm_len)) {
            return fail(18 + (int)i, "RFC 5869 HKDF");
        }
    }
    return 0;
}

static void report(const char *name, uint32_t v)
{
    flt_bare_write(" ");
    flt_bare_write(name);
    flt_bare_write("=");
    flt_bare_write_u32(v);
}

int flt_bare_main(void)
{
    const int code = check_vectors();
    if (code != 0) {
        return code;
    }
    uint8_t k[32], u[32], out[32], key[32], nonce[12];
    for (unsigned i = 0; i < 32; ++i) {
        k[i] = (uint8_t)(7u * i + 1u);
        u[i] = (uint8_t)(13u * i + 5u);
        key[i] = (uint8_t)(3u * i);
    }
    for (unsigned i = 0; i < 12; ++i) {
        nonce[i] = (uint8_t)i;
    }
    uint32_t hwm[5];
    flt_bench_stack_paint(); /* nothing called: the depth of this frame + the paint margin */
    const uint32_t baseline = flt_bench_stack_high_water();
    flt_bench_begin(FLT_BENCH_CALIBRATE);
    flt_bench_end(FLT_BENCH_CALIBRATE);

    flt_bench_stack_paint();
    flt_bench_begin(MARK_X25519);
    flt_x25519(out, k, u);
    flt_bench_end(MARK_X25519);
    hwm[0] = flt_bench_stack_high_water();

    flt_bench_stack_paint();
    flt_bench_begin(MARK_BLOCK);
    flt_chacha20_block(key, 0, nonce, buf);
    flt_bench_end(MARK_BLOCK);
    hwm[1] = flt_bench_stack_high_water();

    flt_bench_stack_paint();
    flt_chacha20_init(&stream, key, nonce, 0);
    flt_bench_begin(MARK_STREAM);
    const flt_status_t s = flt_chacha20_read(&stream, buf, sizeof buf);
    flt_bench_end(MARK_STREAM);
    hwm[2] = flt_bench_stack_high_water();

    flt_bench_stack_paint();
    flt_bench_begin(MARK_HKDF);
    const flt_status_t h = flt_hkdf(nonce, 8, key, 32, nonce, 8, out, 32);
    flt_bench_end(MARK_HKDF);
    hwm[3] = flt_bench_stack_high_water();

    for (unsigned p = 0; p < MASK_PEERS; ++p) {
        peers[p].id = 2u * p + 1u;
        flt_bytes_copy(peers[p].shared, key, 32);
        peers[p].shared[0] = (uint8_t)p;
    }
    flt_bench_stack_paint();
    flt_bench_begin(MARK_MASK);
    const flt_status_t ms = flt_secagg_mask(4, 1, peers, MASK_PEERS, values, MASK_VALUES);
    flt_bench_end(MARK_MASK);
    hwm[4] = flt_bench_stack_high_water();
    if (s != FLT_OK || h != FLT_OK || ms != FLT_OK) {
        return fail(30, "measured calls");
    }
    flt_bare_write("crypto target: ok stack");
    report("x25519", hwm[0]);
    report("chacha20", hwm[1]);
    report("stream", hwm[2]);
    report("hkdf", hwm[3]);
    report("mask", hwm[4]);
    report("baseline", baseline);
    flt_bare_write("\n");
    return 0;
}
