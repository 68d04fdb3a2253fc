"""Procedural stand-in for 3dshapes (Burgess & Kim 2018): a room corner and one object.

The scene: a floor plane, a back wall, one object resting on the floor (cube, cylinder, sphere
or capsule, in 3dshapes' shape order) at one of 8 scales, seen by a perspective camera that
orbits the object by the orientation angle (-30..30 deg, 15 values, as the real labels), under
one fixed light with Lambertian shading and the object's hard shadow.

Colour enters linearly: a pixel is ``w_floor * rgb(floor_hue) + w_wall * rgb(wall_hue) +
w_object * rgb(object_hue)``, where the three weights (shading x coverage) depend only on
(scale, shape, orientation). So 480 geometries are traced, not 480,000 images, and the whole
dataset is those weights (24 MB) plus the hue colours: the compact table of
:class:`~dbench.datasets.shapes3d.Shapes3D`. Rays are 2x2 supersampled for smooth edges.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass

import torch

RENDERER_VERSION = "shapes3d-trace-v1"
SIZE = 64
HUES = tuple(i / 10 for i in range(10))  # 3dshapes: floor, wall and object hue in [0, 0.9]
SCALES = tuple(0.75 + 0.5 * i / 7 for i in range(8))  # linspace(0.75, 1.25, 8)
SHAPES = ("cube", "cylinder", "sphere", "capsule")
ORIENTATIONS = tuple(-30 + 60 * i / 14 for i in range(15))  # degrees, linspace(-30, 30, 15)


@dataclass(frozen=True)
class SceneParams:
    """Camera, room and light (our choices; only the factor values come from 3dshapes)."""

    size: float = 0.55  # object half-extent at scale 1
    camera_distance: float = 4.2
    camera_height: float = 1.7
    look_at_height: float = 0.55
    fov_deg: float = 42.0
    wall_z: float = -2.2  # the back wall, facing the camera at orientation 0
    light: tuple[float, float, float] = (-0.45, 0.8, 0.55)  # towards the light, world frame
    ambient: float = 0.35
    saturation: float = 0.9
    supersample: int = 2

    def fingerprint(self) -> str:
        text = json.dumps({"version": RENDERER_VERSION, **asdict(self)}, sort_keys=True)
        return f"{RENDERER_VERSION}:{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def hue_rgb(h: torch.Tensor, saturation: float) -> torch.Tensor:
    """(..., 3) RGB of hues in [0, 1) at full value (the standard HSV formula)."""
    k = (torch.tensor([5.0, 3.0, 1.0], device=h.device) + 6.0 * h[..., None]) % 6.0
    return 1.0 - saturation * torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0)


def _box(p, s):
    q = p.abs() - s[:, None]
    return q.clamp_min(0).norm(dim=-1) + q.max(-1).values.clamp_max(0)


def _cylinder(p, s):
    dr = torch.sqrt(p[:, 0] ** 2 + p[:, 2] ** 2) - s
    dy = p[:, 1].abs() - s
    outside = torch.sqrt(dr.clamp_min(0) ** 2 + dy.clamp_min(0) ** 2)
    return outside + torch.maximum(dr, dy).clamp_max(0)


def _sphere(p, s):
    return p.norm(dim=-1) - s


def _capsule(p, s):
    r = 0.6 * s  # a vertical segment swept by a ball, as tall as the other shapes
    seg = torch.minimum(torch.maximum(p[:, 1], -(s - r)), s - r)
    return torch.sqrt(p[:, 0] ** 2 + (p[:, 1] - seg) ** 2 + p[:, 2] ** 2) - r


_SDFS = (_box, _cylinder, _sphere, _capsule)  # 3dshapes' shape order


def object_sdf(p: torch.Tensor, shape: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Signed distance to each point's object (centred at the origin, half-extent s)."""
    out = torch.empty(len(p), device=p.device)
    for k, fn in enumerate(_SDFS):
        m = torch.nonzero(shape == k).squeeze(1)
        if len(m):
            out[m] = fn(p[m], s[m])
    return out


def _sphere_trace(o, d, shape, s, t0, t1, steps: int, eps: float = 1e-3):
    """March rays from t0 to t1 (only the live ones each step); returns (hit, t)."""
    t = t0.clone()
    hit = torch.zeros_like(t, dtype=torch.bool)
    live = torch.nonzero(t0 < t1).squeeze(1)
    for _ in range(steps):
        if len(live) == 0:
            break
        tl = t[live]
        dist = object_sdf(o[live] + tl[:, None] * d[live], shape[live], s[live])
        done = dist < eps
        hit[live[done]] = True
        tl = tl + dist
        t[live] = torch.where(done, t[live], tl)
        live = live[~done & (tl < t1[live])]
    return hit, t


def trace_weights(
    shape: torch.Tensor, scale: torch.Tensor, orient_deg: torch.Tensor, p: SceneParams
) -> torch.Tensor:
    """(n, 3, 64, 64) weights of floor, wall and object colour for n geometries."""
    device = shape.device
    n, ss = len(shape), p.supersample
    res = SIZE * ss
    s = p.size * scale  # half-extent of each object; it rests on the floor, centre at y = s
    yaw = torch.deg2rad(orient_deg)
    eye = torch.stack(
        [
            p.camera_distance * torch.sin(yaw),
            torch.full_like(yaw, p.camera_height),
            p.camera_distance * torch.cos(yaw),
        ],
        1,
    )
    target = torch.tensor([0.0, p.look_at_height, 0.0], device=device)
    fwd = target - eye
    fwd = fwd / fwd.norm(dim=1, keepdim=True)
    right = torch.linalg.cross(fwd, torch.tensor([0.0, 1.0, 0.0], device=device).expand(n, 3))
    right = right / right.norm(dim=1, keepdim=True)
    up = torch.linalg.cross(right, fwd)
    half = math.tan(math.radians(p.fov_deg) / 2)
    u = ((torch.arange(res, device=device, dtype=torch.float32) + 0.5) / res * 2 - 1) * half
    gy, gx = torch.meshgrid(-u, u, indexing="ij")
    d = (
        fwd[:, None, None]
        + gx[None, ..., None] * right[:, None, None]
        + gy[None, ..., None] * up[:, None, None]
    )
    d = (d / d.norm(dim=-1, keepdim=True)).reshape(-1, 3)
    rays = res * res
    o = eye.repeat_interleave(rays, 0)
    sh = shape.repeat_interleave(rays)
    sr = s.repeat_interleave(rays)
    centre = torch.stack([torch.zeros_like(sr), sr, torch.zeros_like(sr)], 1)
    oc = o - centre  # object frame: the object centred at the origin

    inf = torch.tensor(float("inf"), device=device)
    t_floor = torch.where(d[:, 1] < 0, -o[:, 1] / d[:, 1].clamp_max(-1e-9), inf)
    t_wall = torch.where(d[:, 2] < 0, (p.wall_z - o[:, 2]) / d[:, 2].clamp_max(-1e-9), inf)
    # Object: trace only rays that meet its bounding sphere (radius sqrt(3) s).
    b = (oc * d).sum(1)
    disc = b * b - ((oc * oc).sum(1) - 3.0 * sr * sr)
    cand = torch.nonzero(disc > 0).squeeze(1)
    t_obj = torch.full((len(d),), float("inf"), device=device)
    if len(cand):
        root = disc[cand].sqrt()
        hit, t = _sphere_trace(
            oc[cand],
            d[cand],
            sh[cand],
            sr[cand],
            (-b[cand] - root).clamp_min(0),
            -b[cand] + root,
            steps=40,
        )
        t_obj[cand[hit]] = t[hit]
    t_bg = torch.minimum(t_floor, t_wall)
    is_obj = t_obj < t_bg
    is_floor = ~is_obj & (t_floor <= t_wall)
    is_wall = ~is_obj & ~is_floor
    t = torch.where(is_obj, t_obj, t_bg)
    pts = o + t[:, None] * d

    light = torch.tensor(p.light, device=device)
    light = light / light.norm()
    normal = torch.zeros_like(pts)
    normal[is_floor] = torch.tensor([0.0, 1.0, 0.0], device=device)
    normal[is_wall] = torch.tensor([0.0, 0.0, 1.0], device=device)
    obj = torch.nonzero(is_obj).squeeze(1)
    if len(obj):
        po, h = pts[obj] - centre[obj], 1e-3
        taps = torch.tensor(
            [[1, -1, -1], [-1, -1, 1], [-1, 1, -1], [1, 1, 1]], dtype=torch.float32, device=device
        )
        grad = sum(tap * object_sdf(po + h * tap, sh[obj], sr[obj])[:, None] for tap in taps)
        normal[obj] = grad / grad.norm(dim=1, keepdim=True).clamp_min(1e-8)
    lit = (normal @ light).clamp_min(0)
    # Hard shadow: floor and wall points whose ray to the light meets the object.
    bg = torch.nonzero(~is_obj).squeeze(1)
    ps = pts[bg] - centre[bg]
    b2 = (ps * light).sum(1)
    disc2 = b2 * b2 - ((ps * ps).sum(1) - 3.0 * sr[bg] ** 2)
    near = torch.nonzero((disc2 > 0) & (-b2 + disc2.clamp_min(0).sqrt() > 0)).squeeze(1)
    if len(near):
        idx, root = bg[near], disc2[near].sqrt()
        shadowed, _ = _sphere_trace(
            ps[near],
            light.expand(len(near), 3),
            sh[idx],
            sr[idx],
            (-b2[near] - root).clamp_min(0),
            -b2[near] + root,
            steps=32,
        )
        lit[idx[shadowed]] = 0.0
    intensity = p.ambient + (1 - p.ambient) * lit
    w = torch.stack([is_floor, is_wall, is_obj], 1).float() * intensity[:, None]
    w = w.view(n, res, res, 3).permute(0, 3, 1, 2)
    return torch.nn.functional.avg_pool2d(w, ss) if ss > 1 else w


def compose(weights: torch.Tensor, hues: torch.Tensor, p: SceneParams) -> torch.Tensor:
    """(n, 3, 64, 64) RGB from weights (n, 3, 64, 64) and hue indices (n, 3): floor, wall,
    object. Elementwise on purpose: every image comes out bit-identical in any batch."""
    rgb = hue_rgb(hues.float() / 10.0, p.saturation)  # (n, 3 surfaces, 3 channels)
    return (
        weights[:, 0:1] * rgb[:, 0, :, None, None]
        + weights[:, 1:2] * rgb[:, 1, :, None, None]
        + weights[:, 2:3] * rgb[:, 2, :, None, None]
    )
