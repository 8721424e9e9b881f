/*
 * catalog_internal.h - the catalog's data structures, shared by its files:
 * catalog.c (apply, clients, changes, indexes), catalog_cmd.c (command
 * decoding and validation), catalog_reg.c (nodes, services, checks),
 * catalog_kv.c (the KV tree), catalog_read.c (JSON reads) and
 * catalog_snap.c (snapshot, restore, digest).
 *
 * Layout. An entity (node, service instance, check) is a small mutable
 * struct holding links and indexes, plus an immutable "body": one
 * allocation with the fields and their strings packed behind them. A change
 * builds a new body first and swaps it in, so an update either happens
 * whole or not at all and costs one allocation. Hash-map keys live in the
 * entity (node and group lowercase names) or in its body (ids), which keeps
 * its id across swaps.
 *
 * Apply is all-or-nothing: every op first decodes and allocates everything
 * it needs (bodies, entities, map and vector room) and only then commits,
 * with no step of the commit able to fail.
 *
 * Tombstones: a removed node keeps its struct (body NULL, maps empty) and a
 * service name whose last instance went keeps its group (no instances), so
 * "node:<n>" and "service:<s>" indexes still move on removal; a deleted KV
 * entry keeps its tree node. "reap" frees them below an index.
 */
#ifndef DSC_CATALOG_INTERNAL_H
#define DSC_CATALOG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "buf.h"
#include "catalog.h"
#include "err.h"
#include "hmap.h"

/* ---- small pieces --------------------------------------------------- */

/* Stored check statuses; index into status_names. */
enum cat_status { CAT_PASSING, CAT_WARNING, CAT_CRITICAL, CAT_STATUS_MAX };

extern const char *const cat_status_names[CAT_STATUS_MAX];

struct cat_pair {
	const char *k, *v;
};

struct cat_taddr {
	const char *k, *addr;
	uint32_t port;
};

/* A growable array of pointers; entries keep their own position. */
struct ptrvec {
	void **v;
	size_t n, cap;
};

int ptrvec_reserve(struct ptrvec *pv, size_t extra);
void ptrvec_release(struct ptrvec *pv);

/* ---- bodies (immutable, one allocation each) ------------------------ */

struct node_body {
	const char *name, *id, *address;
	struct cat_pair *tagged, *meta;	/* sorted by key */
	uint16_t n_tagged, n_meta;
};

struct svc_body {
	const char *id, *name, *address, *kind;
	const char **tags;		/* in registration order */
	struct cat_pair *meta;		/* sorted by key */
	struct cat_taddr *taddrs;	/* sorted by key */
	uint16_t n_tags, n_meta, n_taddrs;
	bool eto;
	uint32_t port, w_passing, w_warning;
};

struct check_body {
	const char *id, *name, *notes, *service_id, *type, *interval,
	    *timeout;
	const char *definition;	/* canonical JSON object text, "" = none */
};

/* ---- entities ------------------------------------------------------- */

struct cat_group;

struct cat_node {
	struct node_body *b;		/* NULL: removed (tombstone) */
	struct hmap services;		/* id -> cat_svc */
	struct hmap checks;		/* id -> cat_check */
	struct ptrvec node_checks;	/* checks with ServiceID "" */
	uint64_t create_index, modify_index;
	uint64_t watch_index;		/* "node:<name>" */
	char lname[];			/* lowercase name, the map key */
};

struct cat_svc {
	struct svc_body *b;
	struct cat_node *node;
	struct cat_group *group;
	size_t gpos;			/* position in group->insts */
	struct ptrvec checks;		/* this instance's checks */
	uint64_t create_index, modify_index;
};

struct cat_check {
	struct check_body *b;
	struct cat_node *node;
	struct cat_svc *svc;		/* NULL for a node-level check */
	size_t pos;			/* in its owner's check vector */
	char *output;			/* NULL = "" */
	enum cat_status status;
	uint64_t create_index, modify_index;
};

/* All instances of one (lowercased) service name. Empty = tombstone. */
struct cat_group {
	struct ptrvec insts;		/* cat_svc */
	uint64_t index;			/* "service:<name>" */
	char lname[];
};

/* One remembered writer, on the LRU list (head = least recently used). */
struct cat_client {
	struct cat_client *prev, *next;
	uint64_t seq;
	bool ok;
	int code;
	char *msg;			/* NULL when code is 0 */
	char id[];
};

/* A KV entry or tombstone: a node of an AVL tree ordered by key bytes. */
struct kv_ent {
	struct kv_ent *l, *r;
	uint64_t max;			/* highest modify_index in subtree */
	uint64_t create_index, modify_index, flags;
	uint8_t *val;			/* NULL when empty */
	size_t vlen;
	int height;
	bool tomb;
	char key[];
};

/* Watch-index slots for "checks:<state>". */
enum { CAT_SX_ANY, CAT_SX_PASSING, CAT_SX_WARNING, CAT_SX_CRITICAL,
	CAT_SX_MAX };

struct catalog {
	uint64_t applied;		/* last applied index */
	uint64_t cur;			/* index of the apply in progress */
	uint64_t services_index, nodes_index;
	uint64_t state_index[CAT_SX_MAX];
	uint64_t node_floor, svc_floor, kv_floor;	/* reaped maxima */

	struct hmap nodes;		/* lname -> cat_node, incl. removed */
	size_t n_live_nodes;
	struct hmap groups;		/* lname -> cat_group, incl. empty */

	struct kv_ent *kv;		/* root */
	size_t kv_n;			/* entries incl. tombstones */

	struct hmap clients;		/* id -> cat_client */
	struct cat_client *lru_head, *lru_tail;
	size_t clients_max;

	/* Changes of the last apply: NUL-separated keys, then an index. */
	struct buf chg;
	size_t *chg_off;
	size_t chg_n, chg_cap;
	const char **chg_keys;
	size_t chg_keys_n;
	bool chg_all;

	char *dc;
};

/* ---- decoded commands (catalog_cmd.c) ------------------------------- */

enum cat_op {
	CAT_OP_REGISTER,
	CAT_OP_DEREGISTER,
	CAT_OP_CHECK_UPDATE,
	CAT_OP_KV_SET,
	CAT_OP_KV_CAS,
	CAT_OP_KV_DELETE,
	CAT_OP_REAP,
	CAT_OP_NOOP,
};

struct check_spec {
	struct check_body *b;		/* owned until committed */
	const char *node;		/* "" = the registration's */
	int status;			/* enum cat_status */
	const char *output;		/* borrowed from the command */
};

/*
 * A decoded, validated command. Strings are borrowed from @root; bodies
 * are owned until an apply takes them (and sets the pointer to NULL).
 */
struct cat_cmd {
	enum cat_op op;
	json_t *root;
	bool header_ok;			/* Op, ClientID and Seq are valid */
	const char *client;		/* NULL: no idempotency */
	uint64_t seq;

	const char *node;		/* register, deregister, check_update */
	struct node_body *nb;		/* register: NULL with no Address */
	bool skip_node_update;
	struct svc_body *sb;		/* register: NULL without Service */
	struct check_spec checks[CATALOG_REG_CHECKS_MAX];
	size_t n_checks;

	const char *service_id, *check_id;	/* deregister, check_update */
	int status;			/* check_update */
	const char *output;		/* check_update: NULL = unchanged */

	const char *key;		/* kv */
	uint8_t *val;			/* kv: owned, NULL = empty */
	size_t vlen;
	uint64_t flags, cas;
	bool has_cas, recurse;

	uint64_t reap_index;
};

int cat_cmd_decode(struct cat_cmd *cmd, const void *data, size_t len,
    struct dsc_err *err);
void cat_cmd_release(struct cat_cmd *cmd);

/* Name/ID rules, shared with restore. Return 0 or DSC_EINVAL. */
int cat_check_name(const char *what, const char *s, struct dsc_err *err);
int cat_check_id(const char *what, const char *s, size_t max,
    struct dsc_err *err);
/* ASCII case-insensitive strcmp (names, tags). */
int cat_strcasecmp(const char *a, const char *b);
/* ASCII lowercase of @s into @out (CATALOG_NAME_MAX + 1 bytes); false if
 * @s is too long to be a name. */
bool cat_lower(const char *s, char *out);

/* Body constructors from plain fields (decode and restore use them). */
struct node_body *node_body_new(const struct node_body *tmpl);
struct svc_body *svc_body_new(const struct svc_body *tmpl);
struct check_body *check_body_new(const struct check_body *tmpl);
bool node_body_eq(const struct node_body *a, const struct node_body *b);
bool svc_body_eq(const struct svc_body *a, const struct svc_body *b);
bool check_body_eq(const struct check_body *a, const struct check_body *b);

/* ---- changes and indexes (catalog.c) -------------------------------- */

/* Records that the watch key @prefix@name moved. Never fails: on OOM the
 * change list degrades to "all". */
void cat_changed(struct catalog *c, const char *prefix, const char *name);
void cat_touch_node(struct catalog *c, struct cat_node *n);
void cat_touch_group(struct catalog *c, struct cat_group *g);
void cat_touch_services(struct catalog *c);
void cat_touch_nodes(struct catalog *c);
void cat_touch_state(struct catalog *c, enum cat_status s);

/* Clients for restore: a new unlinked entry, and linking at the LRU tail. */
struct cat_client *cat_client_new(const char *id);
void cat_client_append(struct catalog *c, struct cat_client *cl);

/* ---- nodes, services, checks (catalog_reg.c) ------------------------ */

void cat_reg_init(struct catalog *c);
void cat_reg_release(struct catalog *c);
struct cat_node *cat_node_find(const struct catalog *c, const char *name);
struct cat_group *cat_group_find(const struct catalog *c, const char *name);
int cat_apply_register(struct catalog *c, struct cat_cmd *cmd,
    struct catalog_result *res);
int cat_apply_deregister(struct catalog *c, struct cat_cmd *cmd,
    struct catalog_result *res);
int cat_apply_check_update(struct catalog *c, struct cat_cmd *cmd,
    struct catalog_result *res);
int cat_reap_reg(struct catalog *c, uint64_t below);
struct cat_node *cat_node_alloc(const char *lname);
struct cat_group *cat_group_alloc(const char *lname);
void cat_node_free(struct cat_node *n);
void cat_group_free(struct cat_group *g);
const char *cat_node_key(const void *p);
const char *cat_group_key(const void *p);
const char *cat_svc_key(const void *p);
const char *cat_check_key(const void *p);

/* ---- KV (catalog_kv.c) ---------------------------------------------- */

void cat_kv_release(struct catalog *c);
struct kv_ent *cat_kv_find(const struct catalog *c, const char *key);
int cat_apply_kv(struct catalog *c, struct cat_cmd *cmd,
    struct catalog_result *res);
int cat_reap_kv(struct catalog *c, uint64_t below);
uint64_t cat_kv_prefix_max(const struct catalog *c, const char *prefix);
/* Inserts a fully built entry with a key not yet present (restore). */
void cat_kv_insert(struct catalog *c, struct kv_ent *e);
struct kv_ent *cat_kv_ent_new(const char *key, size_t klen);
void cat_kv_ent_free(struct kv_ent *e);

/* In-order iteration from the first key >= @from. */
struct kv_iter {
	struct kv_ent *stack[96];
	int top;
};
void cat_kv_seek(const struct catalog *c, struct kv_iter *it,
    const char *from);
struct kv_ent *cat_kv_next(struct kv_iter *it);

/* ---- helpers for reads and snapshots -------------------------------- */

/* Compare-by-name helpers for qsort over entity pointers. */
int cat_cmp_node(const void *a, const void *b);
int cat_cmp_svc(const void *a, const void *b);
int cat_cmp_check(const void *a, const void *b);
int cat_cmp_group(const void *a, const void *b);
/* The items of @m sorted with @cmp, or NULL (out of memory); dsc_free it. */
void **cat_map_sorted(const struct hmap *m,
    int (*cmp)(const void *, const void *), size_t *cnt);

/* The entities of @n's maps as sorted arrays (dsc_free the result). */
struct cat_svc **cat_node_svcs_sorted(const struct cat_node *n, size_t *cnt);
struct cat_check **cat_node_checks_sorted(const struct cat_node *n,
    size_t *cnt);
/* Every node (incl. tombstones when @tombs) sorted by lowercase name. */
struct cat_node **cat_nodes_sorted(const struct catalog *c, bool tombs,
    size_t *cnt);

#endif
