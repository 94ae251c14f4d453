"""ACL schemes (world, auth, digest, ip, super) as ZooKeeper's auth providers implement them.

Pure functions over ``Id``/``ACL`` records: the server passes in a connection's auth ids.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress

from .proto import ACL, ClientInfo, Err, Id, Perm, ZkError

SUPER_ID = Id("super", "")


def digest_id(user_password: str) -> str:
    """``user:base64(sha1("user:password"))`` (DigestAuthenticationProvider.generateDigest)."""
    user = user_password.split(":", 1)[0]
    sha = hashlib.sha1(user_password.encode("utf-8")).digest()
    return f"{user}:{base64.b64encode(sha).decode('ascii')}"


def authenticate(scheme: str, auth: bytes | None, remote_ip: str, super_digest: str | None) -> list[Id]:
    """Ids an AuthPacket adds to a connection; raises AuthFailed for an unknown scheme."""
    if scheme == "digest":
        ident = digest_id((auth or b"").decode("utf-8", "replace"))
        ids = [Id("digest", ident)]
        if super_digest and ident == super_digest:
            ids.insert(0, SUPER_ID)
        return ids
    if scheme == "ip":
        return [Id("ip", remote_ip)]
    raise ZkError(Err.AUTH_FAILED, f"unknown auth scheme {scheme!r}")


def _java_string_hash(s: str) -> int:
    h = 0
    data = s.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h


def java_set_order(ids: list[Id]) -> list[Id]:
    """The iteration order of upstream's per-connection auth-id set (a ConcurrentHashMap key set).

    whoAmI and the expansion of ``auth`` ACLs walk that set, so clients see this order; it is the
    bucket order of a 16-slot table (insertion order within a bucket).
    """

    def bucket(i: Id) -> int:
        h = (17 * 37 + _java_string_hash(i.scheme)) & 0xFFFFFFFF
        h = (37 * h + _java_string_hash(i.id)) & 0xFFFFFFFF
        return (h ^ (h >> 16)) & 15

    return sorted(ids, key=bucket) if len(ids) <= 12 else list(ids)


def _ip_matches(client: str, acl_id: str) -> bool:
    try:
        net = ipaddress.ip_network(acl_id, strict=False)
        return ipaddress.ip_address(client) in net
    except ValueError:
        return False


def _valid_id(scheme: str, ident: str) -> bool:
    if scheme == "digest":
        return len(ident.split(":")) == 2
    if scheme == "ip":
        try:
            ipaddress.ip_network(ident, strict=False)
            return True
        except ValueError:
            return False
    return False


def fixup_acl(acls: list[ACL], auth_ids: list[Id]) -> list[ACL]:
    """Validate a create/setACL ACL list and expand ``auth`` entries (PrepRequestProcessor.fixupACL)."""
    uniq: list[ACL] = []
    for a in acls:
        if a not in uniq:
            uniq.append(a)
    if not uniq:
        raise ZkError(Err.INVALID_ACL, "empty ACL")
    out: list[ACL] = []
    for a in uniq:
        scheme, ident = a.id.scheme, a.id.id
        if scheme == "world" and ident == "anyone":
            out.append(a)
        elif scheme == "auth":
            authed = [cid for cid in java_set_order(auth_ids) if cid.scheme == "digest"]
            if not authed:
                raise ZkError(Err.INVALID_ACL, "auth scheme without an authenticated id")
            out.extend(ACL(a.perms, cid) for cid in authed)
        elif _valid_id(scheme, ident):
            out.append(a)
        else:
            raise ZkError(Err.INVALID_ACL, f"{scheme}:{ident}")
    return out


def check_acl(acl: list[ACL], perm: int, auth_ids: list[Id]) -> None:
    """Raise NoAuth unless one of ``auth_ids`` holds ``perm`` (any bit of it) on ``acl``."""
    if not acl:
        return
    for cid in auth_ids:
        if cid.scheme == "super":
            return
    for a in acl:
        if not a.perms & perm:
            continue
        scheme = a.id.scheme
        if scheme == "world":
            if a.id.id == "anyone":
                return
            continue
        for cid in auth_ids:
            if cid.scheme != scheme:
                continue
            if scheme == "digest" and cid.id == a.id.id:
                return
            if scheme == "ip" and _ip_matches(cid.id, a.id.id):
                return
    raise ZkError(Err.NO_AUTH)


def has_perm(acl: list[ACL], perm: int, auth_ids: list[Id]) -> bool:
    try:
        check_acl(acl, perm, auth_ids)
    except ZkError:
        return False
    return True


def redact_digests(acl: list[ACL]) -> list[ACL]:
    """getACL without ADMIN shows digest ids as ``user:x``."""
    return [
        ACL(a.perms, Id(a.id.scheme, a.id.id.split(":", 1)[0] + ":x")) if a.id.scheme == "digest" else a
        for a in acl
    ]


def client_infos(auth_ids: list[Id]) -> list[ClientInfo]:
    """whoAmI: one entry per id of a known scheme, user name without the digest."""
    out = []
    for cid in java_set_order(auth_ids):
        if cid.scheme == "digest":
            out.append(ClientInfo("digest", cid.id.split(":", 1)[0]))
        elif cid.scheme == "ip":
            out.append(ClientInfo("ip", cid.id))
    return out


ALL = int(Perm.ALL)
