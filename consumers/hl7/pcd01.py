"""PCD-01 (DEC) ``ORU^R01`` from infusion pumps → ``infusion.status_reported`` per channel.

One status per VMD (pump channel) for its *active* source, read from either tree:

=====================  =====================================  =============================
contract field         IHE Vol 3 tree                          Infusion Pump Model tree
=====================  =====================================  =============================
``state``              delivery ``MDC_PUMP_STAT``              source ``…CURRENT_DELIVERY_
                                                               STATUS`` (else delivery info
                                                               ``MDC_PUMP_INFUSING_STATUS``)
``rate``               delivery ``MDC_FLOW_FLUID_PUMP``        delivery info ``MDC_FLOW_
                       (else source)                           FLUID_PUMP_CURRENT`` (else
                                                               source ``MDC_FLOW_FLUID_PUMP``)
``dose_rate``          source ``MDC_FLOW_DRUG_DELIV``          source ``MDC_RATE_DOSE``
``volume_infused``     source ``MDC_VOL_FLUID_DELIV`` (else    source ``MDC_VOL_FLUID_DELIV_
                       delivery ``MDC_VOL_INFUS_ACTUAL_TOTAL``) TOTAL``
``vtbi_remaining``     source ``MDC_VOL_FLUID_TBI_REMAIN``     same
``time_remaining``     source ``MDC_TIME_PD_REMAIN``           same
=====================  =====================================  =============================

The active source is named by ``MDC_DEV_PUMP_ACTIVE_SOURCES`` (model tree) or
``MDC_PUMP_MODE`` = secondary (Vol 3 tree: the second ``CHAN_SOURCE``, noted). A flattened
report (``n.0.0.m``) cannot tell channels apart and is refused (TF-2 B.8: pumps must use
the hierarchical form). With ``hl7_pcd01_derive_transitions`` the snapshot tracker also
derives ``infusion.started``/``paused``/... (:mod:`pcd01_derive`), for sites without IPEC.
"""

from __future__ import annotations

from typing import Any

from consumers.hl7 import mdc
from consumers.hl7.containment import Node, Tree
from consumers.hl7.context import Context
from consumers.hl7.errors import Untranslatable
from consumers.hl7.groups import (
    Group,
    channel_of,
    drop_unused,
    enum,
    find,
    pump_id,
    quantity,
    read_groups,
)

VOL3_STATES = {"infusing": "infusing", "kvo": "kvo", "ready": "idle", "standby": "idle",
               "paused": "paused", "stopped": "stopped", "alarming": "alarming"}
DELIVERY_STATES = {"delivering": "infusing", "transitioning": "infusing", "kvo": "kvo"}


def translate(ctx: Context) -> None:
    groups = read_groups(ctx)
    pumps = [g for g in groups if g.tree.pump_mds() is not None]
    if not pumps:
        raise Untranslatable("no infusion pump in this ORU^R01 (no MDC_DEV_PUMP_*_MDS): "
                             "not a pump's PCD-01 report")
    patient = ctx.patient()
    for group in pumps:
        vmds = list(group.tree.vmds())
        if not vmds:
            raise Untranslatable("flattened containment (n.0.0.m): a pump's channels cannot be "
                                 "told apart; the hierarchical form is required for pumps")
        for vmd in vmds:
            _channel(ctx, group, vmd, patient)
    drop_unused(ctx, groups, "not carried by infusion.status_reported")


def _active_source(ctx: Context, tree: Tree, vmd: Node, delivery: Node | None) -> Node | None:
    sources = [n for n in tree.channels(vmd) if n.role == "source"]
    if not sources:
        return None
    active = enum(find([delivery, vmd], "MDC_DEV_PUMP_ACTIVE_SOURCES"), "pump-source-info-")
    if active:
        for node in sources:
            if mdc.SOURCE_KIND.get(node.refid or "") == active:
                return node
    mode = enum(find([delivery, vmd], "MDC_PUMP_MODE"), "pump-mode-")
    if mode == "secondary" and len(sources) > 1:
        ctx.note(f"VMD {vmd.path_text}: secondary mode: the second source channel read as active")
        return sources[1]
    return sources[0]


def _state(ctx: Context, source: Node | None, delivery: Node | None) -> str | None:
    stat = enum(find([delivery], "MDC_PUMP_STAT"), "pump-status-")
    if stat:
        return VOL3_STATES.get(stat)
    status = enum(find([source], "MDC_DEV_PUMP_CURRENT_DELIVERY_STATUS"), "pump-delivery-status-")
    if status in DELIVERY_STATES:
        return DELIVERY_STATES[status]
    if status == "not-delivering":
        reason = enum(find([source], "MDC_DEV_PUMP_NOT_DELIVERING_REASON"), "pump-")
        return "alarming" if reason == "alarming" else "paused"
    infusing = enum(find([delivery], "MDC_PUMP_INFUSING_STATUS"), "pump-status-")
    if infusing == "infusing":
        return "infusing"
    if infusing == "not-infusing":
        ctx.note("only MDC_PUMP_INFUSING_STATUS not-infusing reported: state read as 'idle'")
        return "idle"
    return None


def _channel(ctx: Context, group: Group, vmd: Node, patient: dict[str, str]) -> None:
    tree = group.tree
    delivery = next((n for n in tree.channels(vmd) if n.role == "delivery"), None)
    source = _active_source(ctx, tree, vmd, delivery)
    where = f"VMD {vmd.path_text}"
    state = _state(ctx, source, delivery)
    if state is None:
        ctx.drop(where, "no pump status (MDC_PUMP_STAT / delivery status): no status event")
        return
    pump = pump_id(tree.equipment(vmd.key))
    if pump is None:
        ctx.drop(where, "no pump id (OBX-18 of the MDS/VMD)")
        return
    metric_at = (delivery or source or vmd).key
    occurred = ctx.first_time(
        (tree.inherited_time(None, metric_at), f"{where} OBX-14"),
        (group.time_text(), "OBR-7"), (ctx.msh.get(7), "MSH-7"),
    )
    if occurred is None:
        raise Untranslatable("no readable observation time (OBX-14, OBR-7, MSH-7)")
    data: dict[str, Any] = {
        "state": state,
        "rate": quantity(ctx, find([delivery], "MDC_FLOW_FLUID_PUMP_CURRENT", "MDC_FLOW_FLUID_PUMP")
                         or find([source], "MDC_FLOW_FLUID_PUMP")),
        "dose_rate": quantity(ctx, find([source], "MDC_FLOW_DRUG_DELIV", "MDC_RATE_DOSE")),
        "volume_infused": quantity(ctx, find([source], "MDC_VOL_FLUID_DELIV_TOTAL",
                                             "MDC_VOL_FLUID_DELIV")
                                   or find([delivery], "MDC_VOL_INFUS_ACTUAL_TOTAL")),
        "vtbi_remaining": quantity(ctx, find([source], "MDC_VOL_FLUID_TBI_REMAIN")),
        "time_remaining": quantity(ctx, find([source], "MDC_TIME_PD_REMAIN")),
        "infusate_source": mdc.SOURCE_KIND.get(source.refid or "", "primary") if source else None,
    }
    subject = {"pump_id": pump, "channel": channel_of(vmd.key), "order_id": group.order_id(),
               **patient}
    slot = f"{group.slot}/vmd{vmd.path_text}"
    identity = ctx.fact_identity("infusion.status_reported", occurred, pump,
                                 channel_of(vmd.key))
    ctx.emit("infusion.status_reported", slot=f"{slot}/status", occurred_at=occurred,
             subject=subject, data=data, identity=identity)
    if ctx.tracker is not None:
        key = (ctx.source_system, pump, channel_of(vmd.key))
        for kind, derived in ctx.tracker.observe(key, occurred, data):
            ctx.note(f"{where}: {kind} derived from successive PCD-01 snapshots")
            ctx.emit(kind, slot=f"{slot}/derived/{kind}", occurred_at=occurred,
                     subject=subject, data=derived,
                     identity=ctx.fact_identity(kind, occurred, pump, channel_of(vmd.key)))
