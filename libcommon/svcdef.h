/*
 * svcdef.h - Consul service and check definitions, decoded and validated
 * (consul-api.md 2.1.3, 2.4, 4.1).
 *
 * Input is what a client sends to PUT /v1/agent/service/register or
 * /v1/agent/check/register, or what an operator writes in a config-dir
 * file. Keys are matched case-insensitively with underscores ignored, so
 * "Name", "name", "deregister_critical_service_after" and
 * "DeregisterCriticalServiceAfter" all work; unknown keys are ignored; two
 * keys that differ only in case or underscores are refused as duplicates.
 * Durations are Go strings or integer nanoseconds (duration.h). A command
 * comes from Args, ScriptArgs (what the Go api sends) or Script (run as
 * ["/bin/sh", "-c", Script]).
 *
 * Output, for each service: its catalog form (catalog.h "register"'s
 * Service object, exact PascalCase keys) and its checks; for each check:
 * its catalog form (an element of "register"'s Checks, without Node) and
 * the struct check_def the agent hands to checker_start(). Defaults are
 * Consul's: service ID = Name, Weights 1/1; check ID "service:<id>" (one
 * check) or "service:<id>:<i>" (1-based, several), name "Service '<Name>'
 * check", Status critical, Timeout 10s.
 *
 * Refused (DSC_EINVAL, a short message naming the field, fit for an HTTP
 * 400 body): missing or oversize names, wrong JSON types, ports outside
 * 0..65535, negative or oversize durations and counts, a check with no
 * kind or two kinds, a kind dsc does not run (UDP, GRPC, H2PING, Docker,
 * alias, OS service), Interval missing on a non-TTL check, Interval with
 * TTL. Below-minimum values are raised as Consul raises them: Interval to
 * SVCDEF_INTERVAL_MIN_MS, DeregisterCriticalServiceAfter to
 * SVCDEF_DEREG_MIN_MS. Script checks decode here; whether they may run is
 * the checker's decision (checks.h).
 *
 * Ownership: the decoders borrow their input for the call. Outputs are
 * written only on success and own everything they point to, the strings
 * of their check_def included; release them with the matching *_release,
 * which leaves them zeroed (a second release is harmless). An output may
 * be moved with memcpy.
 */
#ifndef DSC_SVCDEF_H
#define DSC_SVCDEF_H

#include <stdint.h>

#include <jansson.h>

#include "checks.h"
#include "err.h"

/* Bytes of one definition file. */
#define SVCDEF_FILE_MAX           (1024 * 1024)
/* Services and checks in one file. */
#define SVCDEF_FILE_ENTRIES_MAX   1024
/* Checks of one service (the catalog's limit for one registration). */
#define SVCDEF_CHECKS_MAX         64
/* Consul's floors (agent/checks MinInterval, check_deregister_interval_min). */
#define SVCDEF_INTERVAL_MIN_MS    1000
#define SVCDEF_DEREG_MIN_MS       60000
/* Longest Interval, Timeout, TTL or DeregisterCriticalServiceAfter. */
#define SVCDEF_DURATION_MAX_MS    (366ULL * 24 * 3600 * 1000)
#define SVCDEF_TIMEOUT_MS_DEFAULT 10000
/* SuccessBeforePassing and the failure thresholds. */
#define SVCDEF_THRESHOLD_MAX      10000
#define SVCDEF_URL_MAX            2048
#define SVCDEF_BODY_MAX           4096
#define SVCDEF_HEADER_MAX         1024       /* bytes of one "Name: value" */
#define SVCDEF_ARG_MAX            4096       /* bytes of one argument */
#define SVCDEF_OUTPUT_MAX         (8 * 1024) /* largest OutputMaxSize */

struct svc_check {
	char *id; /* CheckID */
	char *name;
	char *service_id; /* "" for a node-level check */
	/* catalog.h "register" Checks element: CheckID, Name, Notes, Status
	 * (the initial one), ServiceID, Type, Interval, Timeout, Definition */
	json_t *catalog;
	struct check_def def;         /* strings owned here */
	uint64_t deregister_after_ms; /* 0: never */
	json_t *strings_;             /* private: holds def's strings */
};

struct svc_def {
	char *id, *name;
	/* catalog.h "register" Service: ID, Service, Tags, Address, Port,
	 * Meta, Weights, EnableTagOverride, TaggedAddresses */
	json_t *catalog;
	struct svc_check *checks;
	size_t n_checks;
};

/* What one definition file holds. Top-level checks are node checks
 * unless they name a ServiceID. */
struct svcdef_file {
	struct svc_def *services;
	size_t n_services;
	struct svc_check *checks;
	size_t n_checks;
};

/* A ServiceRegistration (@reg borrowed), with its Check/Checks. */
int svcdef_service(json_t *reg, struct svc_def *out, struct dsc_err *err);

/* A CheckRegistration: CheckType plus Name (required), ID or CheckID
 * (default Name), ServiceID, Notes. */
int svcdef_check(json_t *reg, struct svc_check *out, struct dsc_err *err);

/*
 * A definition file's JSON @root: "service" or "services", "check" or
 * "checks". @path only names the file in messages. Service IDs and check
 * IDs must be unique within the file.
 */
int svcdef_file_json(json_t *root, const char *path, struct svcdef_file *out,
    struct dsc_err *err);

/*
 * Reads and decodes the file at @path (at most SVCDEF_FILE_MAX bytes).
 * Bad JSON is "PATH:LINE:COL: <reason>"; other errors start with "PATH: ".
 * DSC_EIO when it cannot be read.
 */
int svcdef_file_load(
    const char *path, struct svcdef_file *out, struct dsc_err *err);

void svc_check_release(struct svc_check *c);
void svc_def_release(struct svc_def *s);
void svcdef_file_release(struct svcdef_file *f);

#endif
