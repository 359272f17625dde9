"""Video: every frame stylised, each one starting from the previous result warped by the optical flow.

Temporal consistency after Ruder, Dosovitskiy & Brox (2016), "Artistic style
transfer for videos" (manuelruder/artistic-videos):

- frame ``t > 0`` starts from the stylised frame ``t - 1`` warped into frame
  ``t``'s place by the backward flow (:mod:`styletransfer.video.flow`, OpenCV's DIS);
- the objective gains a temporal term, ``temporal_weight / D * sum(c * (x - w)^2)``
  with ``w`` that warped frame, ``c`` the certainty mask (0 at disocclusions
  and motion boundaries, from the forward-backward check) and ``D`` the number
  of values of ``x`` (3 H W, in [0, 1]);
- later frames get ``frame_steps`` evaluations (about a third of ``steps``),
  since they start close to their answer;
- optional long-term consistency (``long_term = J >= 2``): the term also holds
  frame ``t`` to the stylised frames ``t - 2 .. t - J``, each warped by its own
  DIS flow, with the mask ``c_long^{t-j,t} = max(c^{t-j,t} - sum_{k<j} c^{t-k,t}, 0)``
  (:func:`~styletransfer.video.flow.long_term_masks`): each pixel is pulled
  toward the nearest earlier frame where it was visible.  The term becomes
  ``temporal_weight / D * sum_j sum(c_long_j * (x - w_j)^2)``.

``temporal=False`` stylises every frame independently from its own content:
the baseline.

The ``instant`` preset (a feed-forward network, :mod:`styletransfer.video.instant`)
optimises nothing: each frame is one pass of the network at the frame's
size, with the style vector made once per video, and temporal consistency is
a blend with the previous output warped by the backward flow,
``O_t = I_t + b c (W_t - I_t)`` (``I_t`` the fresh pass, ``W_t`` the previous
output warped, ``c`` the certainty mask; with ``long_term`` ``W_t`` and ``c``
come from the nearest earlier frame that saw each pixel).  There
``temporal_weight`` is the blend ``b`` in [0, 1] (default
:data:`~styletransfer.front_options.DEFAULT_INSTANT_BLEND`), and
``frame_steps`` does not apply.  The stylised frames are kept in a work directory (PNG, one per
frame, written atomically): a killed run continues after the last finished frame.

The modules: :mod:`~styletransfer.video.temporal` (the temporal term, its
targets, where a frame starts), :mod:`~styletransfer.video.frames` (the frame
loop on plain data, no files: here, or on a Ray actor),
:mod:`~styletransfer.video.prepared` (the driver: :func:`prepare_video` reads the
clip, checks the options, finds the finished frames; :class:`PreparedVideo`'s
``save_frame`` / ``finish`` write), :mod:`~styletransfer.video.workdir` (the
work directory, the output, the metrics), :mod:`~styletransfer.video.run`
(:func:`run_here`, :func:`stylize_video`: a video in this process),
:mod:`~styletransfer.video.flow` (optical flow, warp, masks),
:mod:`~styletransfer.video.io` (clips in, videos out),
:mod:`~styletransfer.video.instant` and :mod:`~styletransfer.video.ray_videos`.
"""

from ..front_options import DEFAULT_INSTANT_BLEND, DEFAULT_TEMPORAL_WEIGHT
from .flow import local_flows
from .frames import FrameRecord, FrameWork, instant_frames, stylize_frames
from .io import png_bytes
from .prepared import PreparedVideo, VideoResult, instant_blend, prepare_video, prepare_videos
from .run import needed_flows, run_here, stylize_video
from .temporal import MAX_LONG_TERM, TemporalObjective
from .workdir import default_work_dir

__all__ = [
    "DEFAULT_INSTANT_BLEND",
    "DEFAULT_TEMPORAL_WEIGHT",
    "MAX_LONG_TERM",
    "FrameRecord",
    "FrameWork",
    "PreparedVideo",
    "TemporalObjective",
    "VideoResult",
    "default_work_dir",
    "instant_blend",
    "instant_frames",
    "local_flows",
    "needed_flows",
    "png_bytes",
    "prepare_video",
    "prepare_videos",
    "run_here",
    "stylize_frames",
    "stylize_video",
]
