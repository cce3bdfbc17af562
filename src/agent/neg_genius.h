/* agent/neg_genius — reads Genius / ANAC utility-space XML files (the format of the ANAC
 * competitions' domains and profiles) into a negotiation domain and preferences, as a
 * cross-check of our engine and ground truth against published domains.
 *
 * Supported: <utility_space> with one <objective>, discrete <issue name=...> elements with
 * <item index value [evaluation]>, <weight index value> per issue, <reservation value>.
 * A profile's evaluations are normalised per issue by the largest (as Genius does), its
 * weights to sum 1. discount_factor is read and ignored (our rounds end at a deadline).
 * Integer and real issues are refused (ERR_UNSUPPORTED). The XML reader is a small subset
 * parser written here: elements, attributes in single or double quotes, the five standard
 * entities, comments, <?...?> and <!...> skipped; caps on size (NEG_MAX_FILE), depth 32,
 * 32 attributes per element. Pure; thread-safe. */
#ifndef APIARY_AGENT_NEG_GENIUS_H
#define APIARY_AGENT_NEG_GENIUS_H

#include "agent/neg_scenario.h"

/* Parses one file. prefs NULL: a domain file (evaluations not needed). 0, ERR_FORMAT,
 * ERR_TOOBIG or ERR_UNSUPPORTED with a message in err. */
int neg_genius_parse(const char *xml, size_t len, neg_domain *dom, neg_prefs *prefs, char *err, size_t cap);
/* A scenario from a domain file (may be NULL: the profiles' own issues are used) and two
 * profiles, each side with deadline rounds and everything allowed. Values of a profile are
 * matched to the domain's by issue and value name. */
int neg_genius_load_files(const char *domain_path, const char *a_path, const char *b_path, int deadline, neg_scenario *out,
                          char *err, size_t cap);

#endif
