/* insn_count.c - a QEMU TCG plugin that counts guest instructions between marker addresses.
 *
 * Contract
 * - Loaded with `-plugin build/qemu-plugin/libinsn_count.so,mark=ID:BEGIN:END,...,out=PATH`
 *   (fltiny.bench.plugin builds it and writes the arguments). Each `mark` names one measured
 *   interval: ID (0..FLT_MAX_MARKS-1) and the guest virtual addresses (hex, 0x optional) of the
 *   first instruction of its begin and end marker functions. For Thumb code pass the address
 *   with bit 0 cleared.
 * - Every executed guest instruction increments one 64-bit counter (an inline add emitted at
 *   translation time, so the count is exact: no sampling, no TB granularity). When the
 *   instruction at BEGIN executes, the counter is remembered; when END executes, the difference
 *   is added to the mark's sum and its call count incremented. Both hooks run before their
 *   instruction, so the begin instruction is counted and the end one is not. An END without a
 *   pending BEGIN (or a second BEGIN before END) is counted in `unmatched`.
 * - At exit (semihosting SYS_EXIT, the virt test finisher, or any QEMU exit that runs atexit
 *   handlers) it writes one line per mark that was called, then a total:
 *       mark id=ID calls=C sum=S unmatched=U
 *       total insns=T
 *   to PATH when `out=` is given, else through qemu_plugin_outs (QEMU's log: `-d plugin`).
 * - Single vCPU machines only (the counter is not per-vCPU); refused otherwise.
 * - Deterministic: for a deterministic guest the counts are the same on every run (run QEMU
 *   with `-icount shift=0` so that timer interrupts, when enabled, land on the same
 *   instructions). They are INSTRUCTION counts: no pipeline, cache or wait-state model.
 *
 * QEMU 7.2 as shipped by Debian has -plugin support but no qemu-plugin.h: the few API
 * functions used here are declared below from the documented plugin API (version 1).
 * Build: gcc -shared -fPIC -std=c99 -O2 -Wall -Wextra -Werror -o libinsn_count.so insn_count.c
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the QEMU plugin API (subset, as documented for plugin API version 1) ---------------- */
typedef uint64_t qemu_plugin_id_t;

typedef struct {
    const char *target_name;
    struct {
        int min;
        int cur;
    } version;
    bool system_emulation;
    union { /* anonymous in QEMU's header; named here for C99, same layout */
        struct {
            int smp_vcpus;
            int max_vcpus;
        } system;
    } u;
} qemu_info_t;

struct qemu_plugin_tb;
struct qemu_plugin_insn;

enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };

typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn,
                                            qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn,
                                                enum qemu_plugin_op op, void *ptr, uint64_t imm);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
void qemu_plugin_outs(const char *string);

#define EXPORT __attribute__((visibility("default")))

EXPORT int qemu_plugin_version = 1;
EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv);

/* ---- state ------------------------------------------------------------------------------- */
#define FLT_MAX_MARKS 32

typedef struct {
    bool used;
    uint64_t begin;
    uint64_t end;
    bool open;
    uint64_t start;
    uint64_t sum;
    uint64_t calls;
    uint64_t unmatched;
} mark_t;

static mark_t marks[FLT_MAX_MARKS];
static uint64_t insns; /* every executed guest instruction */
static char out_path[4096];

/* userdata of a hook: the mark index times 2, plus 1 for an end hook (never NULL: +1 more) */
static void *hook_data(unsigned idx, bool end)
{
    return (void *)(uintptr_t)(2u * idx + (end ? 1u : 0u) + 2u);
}

static void on_marker(unsigned int vcpu, void *userdata)
{
    (void)vcpu;
    uintptr_t v = (uintptr_t)userdata - 2u;
    mark_t *m = &marks[v / 2u];
    if ((v & 1u) == 0u) {
        if (m->open) {
            m->unmatched++;
        }
        m->open = true;
        m->start = insns;
    } else if (m->open) {
        m->sum += insns - m->start;
        m->calls++;
        m->open = false;
    } else {
        m->unmatched++;
    }
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; ++i) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint64_t pc = qemu_plugin_insn_vaddr(insn);
        /* the hook first, then the count: a marker instruction reads the count before itself */
        for (unsigned k = 0; k < FLT_MAX_MARKS; ++k) {
            if (!marks[k].used) {
                continue;
            }
            if (pc == marks[k].begin) {
                qemu_plugin_register_vcpu_insn_exec_cb(insn, on_marker, QEMU_PLUGIN_CB_NO_REGS,
                                                       hook_data(k, false));
            }
            if (pc == marks[k].end) {
                qemu_plugin_register_vcpu_insn_exec_cb(insn, on_marker, QEMU_PLUGIN_CB_NO_REGS,
                                                       hook_data(k, true));
            }
        }
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &insns, 1u);
    }
}

static void on_exit_cb(qemu_plugin_id_t id, void *userdata)
{
    (void)id;
    (void)userdata;
    char line[160];
    FILE *f = out_path[0] != '\0' ? fopen(out_path, "w") : NULL;
    for (unsigned k = 0; k < FLT_MAX_MARKS; ++k) {
        if (!marks[k].used) {
            continue;
        }
        snprintf(line, sizeof line,
                 "mark id=%u calls=%" PRIu64 " sum=%" PRIu64 " unmatched=%" PRIu64 "\n", k,
                 marks[k].calls, marks[k].sum, marks[k].unmatched);
        if (f) {
            fputs(line, f);
        } else {
            qemu_plugin_outs(line);
        }
    }
    snprintf(line, sizeof line, "total insns=%" PRIu64 "\n", insns);
    if (f) {
        fputs(line, f);
        fclose(f);
    } else {
        qemu_plugin_outs(line);
    }
}

/* "ID:BEGIN:END" -> marks[ID]; 0 on success */
static int parse_mark(const char *s)
{
    char *end = NULL;
    unsigned long idx = strtoul(s, &end, 10);
    if (end == s || *end != ':' || idx >= FLT_MAX_MARKS) {
        return -1;
    }
    s = end + 1;
    unsigned long long b = strtoull(s, &end, 16);
    if (end == s || *end != ':') {
        return -1;
    }
    s = end + 1;
    unsigned long long e = strtoull(s, &end, 16);
    if (end == s || *end != '\0' || b == e) {
        return -1;
    }
    marks[idx].used = true;
    marks[idx].begin = b;
    marks[idx].end = e;
    return 0;
}

int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    if (info->system_emulation && info->u.system.max_vcpus > 1) {
        qemu_plugin_outs("insn_count: single-vCPU machines only\n");
        return -1;
    }
    for (int i = 0; i < argc; ++i) {
        const char *a = argv[i];
        if (strncmp(a, "mark=", 5) == 0) {
            if (parse_mark(a + 5) != 0) {
                qemu_plugin_outs("insn_count: bad mark= (want ID:BEGINHEX:ENDHEX)\n");
                return -1;
            }
        } else if (strncmp(a, "out=", 4) == 0) {
            size_t n = strlen(a + 4);
            if (n == 0 || n >= sizeof out_path) {
                qemu_plugin_outs("insn_count: bad out= path\n");
                return -1;
            }
            memcpy(out_path, a + 4, n + 1);
        } else {
            qemu_plugin_outs("insn_count: unknown argument (mark=ID:BEGIN:END, out=PATH)\n");
            return -1;
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, on_exit_cb, NULL);
    return 0;
}
