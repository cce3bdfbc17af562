/* p2p/nat — UPnP-IGD and NAT-PMP port mapping; see nat.h. */
#include "p2p/nat.h"

#include <arpa/inet.h>
#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/upnpcommands.h>
#include <natpmp.h>
#include <stdio.h>
#include <string.h>
#include <sys/select.h>
#include <sys/time.h>

#include "core/err.h"

static int upnp(uint16_t tcp, uint16_t udp, int timeout_ms, nat_result *r) {
  int err = 0;
  struct UPNPDev *devs = upnpDiscover(timeout_ms, NULL, NULL, 0, 0, 2, &err);
  if (!devs) {
    snprintf(r->err, sizeof r->err, "no UPnP gateway answered within %d ms", timeout_ms);
    return ERR_NOTFOUND;
  }
  struct UPNPUrls urls;
  struct IGDdatas data;
  char lan[64] = "";
  memset(&urls, 0, sizeof urls);
  int igd = UPNP_GetValidIGD(devs, &urls, &data, lan, sizeof lan);
  freeUPNPDevlist(devs);
  int rc = ERR_NOTFOUND;
  if (igd != 1) {
    snprintf(r->err, sizeof r->err, "no connected UPnP internet gateway found (status %d)", igd);
    goto done;
  }
  char port[8], lease[16];
  snprintf(lease, sizeof lease, "%d", NAT_LEASE_S);
  snprintf(port, sizeof port, "%u", tcp);
  int e = UPNP_AddPortMapping(urls.controlURL, data.first.servicetype, port, port, lan, "apiary", "TCP", NULL, lease);
  if (e) {
    snprintf(r->err, sizeof r->err, "the UPnP gateway refused to map TCP %u (error %d)", tcp, e);
    goto done;
  }
  r->tcp_port = tcp;
  if (udp) {
    snprintf(port, sizeof port, "%u", udp);
    if (!UPNP_AddPortMapping(urls.controlURL, data.first.servicetype, port, port, lan, "apiary", "UDP", NULL, lease))
      r->udp_port = udp;
  }
  char ext[46] = "";
  if (!UPNP_GetExternalIPAddress(urls.controlURL, data.first.servicetype, ext)) snprintf(r->external_ip, sizeof r->external_ip, "%s", ext);
  snprintf(r->method, sizeof r->method, "upnp-igd");
  r->ok = 1;
  rc = 0;
done:
  FreeUPNPUrls(&urls);
  return rc;
}

/* One NAT-PMP request/response with the library's retry schedule, bounded by deadline. */
static int pmp_wait(natpmp_t *p, natpmpresp_t *resp, struct timeval deadline) {
  for (;;) {
    struct timeval now, tv;
    gettimeofday(&now, NULL);
    if (timercmp(&now, &deadline, >=)) return NATPMP_ERR_NOGATEWAYSUPPORT;
    fd_set fds;
    FD_ZERO(&fds);
    FD_SET(p->s, &fds);
    getnatpmprequesttimeout(p, &tv);
    struct timeval left;
    timersub(&deadline, &now, &left);
    if (timercmp(&left, &tv, <)) tv = left;
    select(p->s + 1, &fds, NULL, NULL, &tv);
    int rc = readnatpmpresponseorretry(p, resp);
    if (rc != NATPMP_TRYAGAIN) return rc;
  }
}

static int pmp(uint16_t tcp, uint16_t udp, int timeout_ms, nat_result *r) {
  natpmp_t p;
  if (initnatpmp(&p, 0, 0) < 0) {
    snprintf(r->err + strlen(r->err), sizeof r->err - strlen(r->err), "; no default gateway for NAT-PMP");
    return ERR_NOTFOUND;
  }
  struct timeval now, dl, span = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  gettimeofday(&now, NULL);
  timeradd(&now, &span, &dl);
  natpmpresp_t resp;
  int rc = ERR_NOTFOUND;
  if (sendnewportmappingrequest(&p, NATPMP_PROTOCOL_TCP, tcp, tcp, NAT_LEASE_S) < 0 || pmp_wait(&p, &resp, dl) < 0) {
    snprintf(r->err + strlen(r->err), sizeof r->err - strlen(r->err), "; the gateway did not answer NAT-PMP");
    goto done;
  }
  r->tcp_port = resp.pnu.newportmapping.mappedpublicport;
  if (udp && sendnewportmappingrequest(&p, NATPMP_PROTOCOL_UDP, udp, udp, NAT_LEASE_S) >= 0 && pmp_wait(&p, &resp, dl) >= 0)
    r->udp_port = resp.pnu.newportmapping.mappedpublicport;
  if (sendpublicaddressrequest(&p) >= 0 && pmp_wait(&p, &resp, dl) >= 0)
    inet_ntop(AF_INET, &resp.pnu.publicaddress.addr, r->external_ip, sizeof r->external_ip);
  snprintf(r->method, sizeof r->method, "nat-pmp");
  r->ok = 1;
  r->err[0] = 0;
  rc = 0;
done:
  closenatpmp(&p);
  return rc;
}

int nat_map(uint16_t tcp_port, uint16_t udp_port, int timeout_ms, nat_result *out) {
  memset(out, 0, sizeof *out);
  if (upnp(tcp_port, udp_port, timeout_ms, out) == 0) return 0;
  return pmp(tcp_port, udp_port, timeout_ms, out);
}
