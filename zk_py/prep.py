"""Write validation (upstream's PrepRequestProcessor): a request record in, its txn record out.

Pure: reads the tree, never changes it.  The checks run in upstream's order, because the
order decides which error a client sees when several apply (for example NoNode before
NoAuth before NodeExists for a create).
"""

from __future__ import annotations

from typing import Any

from . import acl as aclmod
from .datatree import DataTree
from .jute import NULL_STRING, JuteError, Reader
from .paths import validate_path
from .proto import (
    CheckVersionRequest,
    CheckVersionTxn,
    CreateContainerTxn,
    CreateMode,
    CreateRequest,
    CreateTTLRequest,
    CreateTTLTxn,
    CreateTxn,
    DeleteRequest,
    DeleteTxn,
    Err,
    Id,
    Op,
    Perm,
    ReconfigRequest,
    SetACLRequest,
    SetACLTxn,
    SetDataRequest,
    SetDataTxn,
    ZkError,
)

TTL_MAX = 0xFFFFFFFFFF
SPECIAL_PATHS = frozenset(("/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"))
CREATE_OPS = frozenset({Op.CREATE, Op.CREATE2, Op.CREATE_CONTAINER, Op.CREATE_TTL})
MULTI_OPS = CREATE_OPS | {Op.DELETE, Op.SET_DATA, Op.CHECK}


def prep_write(
    tree: DataTree, auth: list[Id], op: int, rec: Any, *, extended_types: bool, reconfig_enabled: bool
) -> Any:
    """Validate a write against the tree and return its txn (raises ZkError)."""
    if getattr(rec, "path", "") is NULL_STRING:  # upstream fails on the null with a marshalling error
        raise ZkError(Err.MARSHALLING_ERROR, "null path")
    if op in CREATE_OPS:
        return prep_create(tree, auth, op, rec, extended_types=extended_types)
    if op == Op.DELETE:
        path = rec.path  # 3.8 checks only the last slash here, not the full path rules
        slash = path.rfind("/")
        if slash == -1 or "\0" in path or path in SPECIAL_PATHS:
            raise ZkError(Err.BAD_ARGUMENTS, path)
        parent = tree.nodes.get(path[:slash] or "/")
        if parent is None:
            raise ZkError(Err.NO_NODE, path)
        aclmod.check_acl(parent.acl, Perm.DELETE, auth)
        node = tree.nodes.get(path)
        if node is None:
            raise ZkError(Err.NO_NODE, path)
        check_version(node.version, rec.version)
        if node.children:
            raise ZkError(Err.NOT_EMPTY, path)
        return DeleteTxn(path)
    if op == Op.SET_DATA:
        validate_path(rec.path)
        node = tree.nodes.get(rec.path)
        if node is None:
            raise ZkError(Err.NO_NODE, rec.path)
        aclmod.check_acl(node.acl, Perm.WRITE, auth)
        return SetDataTxn(rec.path, rec.data, check_version(node.version, rec.version))
    if op == Op.SET_ACL:
        validate_path(rec.path)
        acl = aclmod.fixup_acl(rec.acl, auth)
        node = tree.nodes.get(rec.path)
        if node is None:
            raise ZkError(Err.NO_NODE, rec.path)
        aclmod.check_acl(node.acl, Perm.ADMIN, auth)
        return SetACLTxn(rec.path, acl, check_version(node.aversion, rec.version))
    if op == Op.CHECK:
        validate_path(rec.path)
        node = tree.nodes.get(rec.path)
        if node is None:
            raise ZkError(Err.NO_NODE, rec.path)
        aclmod.check_acl(node.acl, Perm.READ, auth)
        return CheckVersionTxn(rec.path, check_version(node.version, rec.version))
    if op == Op.RECONFIG:
        if not reconfig_enabled:
            raise ZkError(Err.RECONFIG_DISABLED)
        raise ZkError(Err.UNIMPLEMENTED, "reconfig is not supported on a standalone server")
    raise ZkError(Err.UNIMPLEMENTED, f"op {op}")


def prep_create(tree: DataTree, auth: list[Id], op: int, rec: Any, *, extended_types: bool) -> Any:
    """create/create2/createContainer/createTTL (pRequest2TxnCreate)."""
    try:
        mode = CreateMode(rec.flags)
    except ValueError:
        raise ZkError(Err.BAD_ARGUMENTS, f"create flags {rec.flags}") from None
    ttl = rec.ttl if op == Op.CREATE_TTL else -1
    if mode.ttl and not extended_types:
        raise ZkError(Err.UNIMPLEMENTED, "TTL nodes need extendedTypesEnabled=true")
    if mode.ttl:
        if ttl <= 0 or ttl > TTL_MAX:
            raise ZkError(Err.BAD_ARGUMENTS, f"ttl {ttl}")
    elif ttl >= 0:
        raise ZkError(Err.BAD_ARGUMENTS, f"ttl {ttl} with mode {mode.name}")
    path = rec.path
    slash = path.rfind("/")
    if slash == -1 or "\0" in path:
        raise ZkError(Err.BAD_ARGUMENTS, path)
    acl = aclmod.fixup_acl(rec.acl, auth)
    parent_path = path[:slash] or "/"
    parent = tree.nodes.get(parent_path)
    if parent is None:
        raise ZkError(Err.NO_NODE, parent_path)
    aclmod.check_acl(parent.acl, Perm.CREATE, auth)
    if mode.sequential:
        path = f"{path}{sequence_suffix(parent.cversion)}"
    validate_path(path)
    if path in tree.nodes:
        raise ZkError(Err.NODE_EXISTS, path)
    if parent.is_session_ephemeral:
        raise ZkError(Err.NO_CHILDREN_FOR_EPHEMERALS, path)
    new_cversion = parent.cversion + 1
    if op == Op.CREATE_CONTAINER:
        return CreateContainerTxn(path, rec.data, acl, new_cversion)
    if op == Op.CREATE_TTL:
        return CreateTTLTxn(path, rec.data, acl, new_cversion, ttl)
    return CreateTxn(path, rec.data, acl, mode.ephemeral, new_cversion)


def multi_create_op(op: int, rec: Any) -> int:
    """Inside multi, 3.8 rebuilds every create from its flags (Op.create): create2 becomes create,
    and the flags alone decide container or TTL."""
    if op not in CREATE_OPS:
        return op
    try:
        mode = CreateMode(rec.flags)
    except ValueError:
        return Op.CREATE  # upstream falls back to PERSISTENT here; prep then rejects the flags
    if mode.ttl:
        return Op.CREATE_TTL if op == Op.CREATE_TTL else Op.CREATE
    if mode == CreateMode.CONTAINER:
        return Op.CREATE_CONTAINER
    return Op.CREATE


def sequence_suffix(n: int) -> str:
    """Java's ``%010d``: the counter is a signed int, so it can turn negative after 2^31 creates."""
    return f"{n:010d}" if n >= 0 else f"-{-n:09d}"


def check_version(current: int, expected: int) -> int:
    """-1 matches any version; returns the next version (wrapping like a Java int)."""
    if expected != -1 and expected != current:
        raise ZkError(Err.BAD_VERSION)
    return current + 1 if current < 0x7FFFFFFF else -0x80000000


_WRITE_REQUESTS: dict[int, Any] = {
    Op.CREATE: CreateRequest,
    Op.CREATE2: CreateRequest,
    Op.CREATE_CONTAINER: CreateRequest,
    Op.CREATE_TTL: CreateTTLRequest,
    Op.DELETE: DeleteRequest,
    Op.SET_DATA: SetDataRequest,
    Op.SET_ACL: SetACLRequest,
    Op.CHECK: CheckVersionRequest,
    Op.RECONFIG: ReconfigRequest,
}


def decode_write(op: int, r: Reader) -> Any:
    """The request record of a write opcode."""
    cls = _WRITE_REQUESTS.get(op)
    if cls is None:
        raise JuteError(f"not a write op: {op}")
    return cls.read(r)
