/* node/vaultsvc — vault envelopes over the links (privacy/share on the wire).
 *
 * Peer method `vault.envelope` {env: base64}: another node hands this node an envelope
 * sealed for it. The node cannot open it into the vault (it does not hold the vault
 * passphrase), so it checks the header (size cap, version, recipient = this node) and
 * keeps it, still sealed, in HOME/vault-inbox/ (0700; files 0600, named by the hash of
 * their bytes, at most VAULTSVC_INBOX_MAX of them); the owner imports them with
 * `apiary vault import --inbox`. Control method `vault.send` {to, env}: the owner's CLI
 * has the node deliver an envelope to `to` (dialling it if needed). Loop thread. */
#ifndef APIARY_NODE_VAULTSVC_H
#define APIARY_NODE_VAULTSVC_H

#include "node/svc.h"

#define VAULTSVC_INBOX "vault-inbox"
#define VAULTSVC_INBOX_MAX 256

typedef struct vaultsvc vaultsvc;

int vaultsvc_start(node_ctx *c, vaultsvc **out, char *err, size_t cap);
void vaultsvc_free(vaultsvc *v);

#endif
