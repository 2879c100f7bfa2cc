"""``fast_path``: the opt-in speed-ups of a training's forward / backward pass, and
``fast_path="auto"``, which measures which of them pays on this machine.

What wins differs per CPU and network (docs/benchmarks.md, "Fast path"): NHWC
(channels_last) made cifar_3x3 1.2-1.3x faster at batch 32 on our AVX2 machines,
and ``torch.compile`` made it slower once its compile time is counted. So
``"auto"`` times a few training steps of the network at hand, on a batch of the
training images, in both memory layouts, and keeps the faster one. It never
chooses ``"compile"`` (its compile time is paid per process and did not pay back on
our machines) or ``"bf16"`` (it rounds: whether accuracy holds is a question for
the user, not a timing); give them explicitly. On a CPU with native bfloat16
instructions (AVX512-BF16, AMX), where bf16 trained cifar_3x3-sized to tf_cifar10-sized
nets 1.4-4x faster (docs/benchmarks.md, "Opt-in fast path"), the trial also times
bf16 in the chosen layout and prints how much faster it was, so that the user can
decide with the number at hand.
"""

import copy
import hashlib
import time
import warnings
from pathlib import Path

import torch

__all__ = ["FAST_PATHS", "check_fast_path", "choose_fast_path", "native_bf16"]

FAST_PATHS = ("channels_last", "compile", "bf16")
AUTO = "auto"

# channels_last is kept only when it is this much faster: a near tie is noise, and
# contiguous (the layout every other code path uses) is the default.
MIN_SPEEDUP = 1.05
# The trial: pairs of steps (one per layout, in alternating order) until both the
# pairs and the seconds suffice; the median of the pairs' ratios. A ratio within a
# pair is robust to load that changes during the trial (another job starting), and
# a steps-of-milliseconds network needs many pairs to rise above the timer's noise.
MIN_PAIRS, MAX_PAIRS, MIN_SECONDS, MAX_SECONDS = 5, 50, 0.5, 3.0

# One choice per process and setting, so that the fits of one process (a grid
# search, a cross-validation) all train with the same layout: the layouts round
# differently, and a choice that flipped between fits would make them differ.
_CHOICES = {}


def check_fast_path(value, allow_auto=True):
    """The set of fast-path options ``value`` names (None, one name or a list of names),
    or ``"auto"``."""
    if value is None:
        return frozenset()
    if allow_auto and isinstance(value, str) and value == AUTO:
        return AUTO
    items = (value,) if isinstance(value, str) else value
    if not isinstance(items, (list, tuple, set, frozenset)) or \
            any(not isinstance(i, str) or i not in FAST_PATHS for i in items):
        raise ValueError(f"fast_path must be None, {AUTO!r}, one of {list(FAST_PATHS)} or a "
                         f"list of them, got {value!r}")
    return frozenset(items)


def native_bf16():
    """True when the CPU has bfloat16 arithmetic instructions (AVX512-BF16 or AMX-BF16;
    without them oneDNN emulates bf16, slower than float32), False when it has not,
    None when unknown (no /proc/cpuinfo)."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return None
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def _step_seconds(trial, x, channels_last, bf16=False):
    """Seconds of one training step (forward, backward, optimizer step) of ``trial``, a
    (module, optimizer) pair, on ``x`` (both in the layout ``channels_last`` says), the
    forward under bfloat16 autocast when ``bf16``."""
    module, optimizer = trial
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = module(x)
    out = out if torch.is_tensor(out) else torch.cat([o.flatten(1) for o in out], 1)
    if out.requires_grad:  # (a network with every layer frozen has no backward)
        out.float().square().mean().backward()
        # The whole step, as in training: the optimizer's elementwise updates run over
        # weights and gradients in the layout under test.
        if optimizer is not None:
            optimizer.step()
    module.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def _trial(module, channels_last, optimizer):
    """A throw-away (module, optimizer) copy of ``module`` in the layout to time."""
    layout = torch.channels_last if channels_last else torch.contiguous_format
    copied = copy.deepcopy(module).train().to(memory_format=layout)
    # lr 0: the copies are thrown away, and a real step could drive them into
    # denormals or overflow, which changes the speed of the very same kernels
    trainable = [p for p in copied.parameters() if p.requires_grad]
    return copied, optimizer(trainable, lr=0.0) if trainable else None


def _speedup(module, x, optimizer, a=(False, False), b=(True, False)):
    """Median over step pairs of (seconds of variant ``a`` / seconds of variant ``b``),
    the median seconds of each and the number of pairs; a variant is (channels_last,
    bf16), by default contiguous against channels_last, both float32."""
    variants = []
    for channels_last, bf16 in (a, b):
        xv = x.contiguous(memory_format=torch.channels_last) if channels_last else x
        variants.append((_trial(module, channels_last, optimizer), xv, channels_last, bf16))
    first, second = ((lambda v=v: _step_seconds(v[0], v[1], v[2], bf16=v[3]))
                     for v in variants)
    for _ in range(2):  # warm-up: oneDNN builds its kernels on the first passes
        first(), second()
    pairs, started = [], time.perf_counter()
    while len(pairs) < MAX_PAIRS:
        elapsed = time.perf_counter() - started
        if (len(pairs) >= MIN_PAIRS and elapsed >= MIN_SECONDS) or elapsed >= MAX_SECONDS:
            break
        if len(pairs) % 2:  # BA after AB: neither variant always runs first
            tb = second()
            ta = first()
        else:
            ta = first()
            tb = second()
        pairs.append((ta, tb))
    ta, tb = (sorted(column)[len(column) // 2] for column in zip(*pairs))
    ratios = sorted(i / j for i, j in pairs)
    return ratios[len(ratios) // 2], ta, tb, len(pairs)


def _setting_key(module, x, optimizer):
    """What makes two trials the same: the network (its modules, their plain attributes
    such as a cut point or a pooling, which parameters train), the batch, the optimizer
    and the threads."""
    plain = (str, int, float, bool, tuple, type(None))
    attrs = [(name, sorted((k, repr(v)) for k, v in vars(m).items()
                           if not k.startswith("_") and isinstance(v, plain)))
             for name, m in module.named_modules()]
    trainable = [(name, p.requires_grad) for name, p in module.named_parameters()]
    text = repr((repr(module), attrs, trainable, getattr(optimizer, "__qualname__", optimizer)))
    return (hashlib.sha1(text.encode()).hexdigest(), tuple(x.shape), torch.get_num_threads())


def choose_fast_path(module, X, batch_size, device="cpu", recorded=None, verbose=0,
                     optimizer=torch.optim.Adam):
    """The fast path of ``fast_path="auto"`` for training ``module`` on images ``X``.

    Parameters
    ----------
    module : torch.nn.Module
        The initialised network (not changed: a copy is timed).
    X : torch.Tensor
        The training inputs; the first ``batch_size`` are timed.
    batch_size : int
    device : str, default="cpu"
    recorded : list of str or None
        The choice a resumed run made (from its checkpoint): kept, so that the
        continuation trains as the run would have.
    verbose : int, default=0
        Print the choice and the two timings.
    optimizer : torch.optim.Optimizer class, default=torch.optim.Adam
        The training's optimizer: its step is part of the timed step.

    Returns
    -------
    frozenset of str
        ``{"channels_last"}`` or the empty set.
    """
    def say(choice, how):
        if verbose:
            print(f"fast_path='auto': {'channels_last' if choice else 'none'} ({how})")
        return choice

    on_cpu = torch.device(device).type == "cpu"
    convs = any(isinstance(m, torch.nn.Conv2d) for m in module.modules())
    timeable = on_cpu and X.dim() == 4 and convs
    if recorded is not None:
        if timeable:  # later fits of this process with this setting train alike
            _CHOICES.setdefault(_setting_key(module, X[:batch_size], optimizer),
                                (frozenset(recorded), "the choice of a run resumed earlier "
                                                      "in this process"))
        return say(frozenset(recorded), "the resumed run's choice")
    if not on_cpu:
        # The layouts were measured on CPUs only, and timing a GPU needs synchronisation
        # this trial does not do: give fast_path explicitly there.
        return say(frozenset(), f"the trial times CPU training only, not {device!r}")
    if not timeable:
        return say(frozenset(), "no convolution over image batches: no layout to choose")
    x = X[:batch_size].to(dtype=torch.float32)
    key = _setting_key(module, x, optimizer)
    if key not in _CHOICES:
        try:
            # Dropout draws from torch's generator: the trial must not move the run's seeds.
            with torch.random.fork_rng(devices=[]):
                speedup, a, b, n = _speedup(module, x, optimizer)
        except Exception as exc:  # e.g. an optimizer whose step needs a closure (LBFGS)
            warnings.warn(f"fast_path='auto' could not time a training step "
                          f"({type(exc).__name__}: {exc}); training in the default layout "
                          "(give fast_path explicitly to choose)", UserWarning, stacklevel=2)
            return say(frozenset(), "the timing trial failed")
        choice = frozenset({"channels_last"}) if speedup >= MIN_SPEEDUP else frozenset()
        how = (f"{n} pairs of training steps of {len(x)} images, median {a * 1e3:.1f} ms "
               f"contiguous and {b * 1e3:.1f} ms channels_last; the pairs' median ratio "
               f"{speedup:.2f}x, kept when >= {MIN_SPEEDUP}x")
        if verbose and native_bf16():  # a word for the verbose line only: not timed silently
            how += _bf16_note(module, x, optimizer, choice)
        _CHOICES[key] = choice, how
    return say(*_CHOICES[key])


def _bf16_note(module, x, optimizer, choice):
    """The verbose output's word on bf16, on a CPU with native bf16: how much faster a
    step in the chosen layout was under bf16 autocast. Never chosen automatically: it
    rounds, and whether the accuracy holds depends on the network and the data."""
    layout = "channels_last" in choice
    try:
        with torch.random.fork_rng(devices=[]):
            speedup, _, b, n = _speedup(module, x, optimizer, (layout, False), (layout, True))
    except Exception as exc:  # (autocast unsupported by some layer): no word on it
        return f"; bf16 could not be timed ({type(exc).__name__})"
    explicit = sorted(choice | {"bf16"})
    explicit = explicit[0] if len(explicit) == 1 else explicit
    return (f". This CPU has native bf16: in the same layout a bf16 step took "
            f"{b * 1e3:.1f} ms, {speedup:.2f}x as fast ({n} pairs); not chosen, as bf16 "
            f"rounds: give fast_path={explicit!r} to train with it")
