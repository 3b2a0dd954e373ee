"""The paper's optimisers (sec. IV-B), with weight decay as PyTorch's SGD/Adam apply it.

PyTorch adds wd * param to the gradient before momentum/Adam moments (L2, not AdamW's decoupled
decay), and its SGD momentum buffer starts at the first gradient: optax.trace does the same.
Decay applies to every parameter, BN scales and biases included, as `model.parameters()` does.
"""

import optax


def _step_schedule(cfg, steps_per_epoch: int):
  period = cfg.lr_step_epochs * steps_per_epoch
  staircase = optax.exponential_decay(cfg.lr * cfg.lr_decay, transition_steps=period,
                                      decay_rate=cfg.lr_decay, staircase=True)
  return optax.join_schedules([optax.constant_schedule(cfg.lr), staircase],
                              boundaries=[period - steps_per_epoch])


# optim.schedule -> (config.optim, steps_per_epoch) -> the learning rate per step.
_SCHEDULES = {
    "constant": lambda cfg, steps_per_epoch: optax.constant_schedule(cfg.lr),
    "step": _step_schedule,
}
# optim.name -> (config.optim, learning rate schedule) -> the optax transform, before decay.
_OPTIMIZERS = {
    "sgd": lambda cfg, lr: optax.sgd(lr, momentum=cfg.momentum or None),
    "adam": lambda cfg, lr: optax.adam(lr, b1=0.9, b2=0.999, eps=1e-8),
}
SCHEDULES = tuple(_SCHEDULES)
OPTIMIZERS = tuple(_OPTIMIZERS)


def _choices(names) -> str:
  return " or ".join(map(repr, names))


def make_schedule(cfg, steps_per_epoch: int):
  """Learning rate per step: 'constant', or 'step' (multiply by `lr_decay` every
  `lr_step_epochs` epochs, as torch.optim.lr_scheduler.StepLR in the official CDCN loop).

  That loop calls scheduler.step() at the START of each epoch, so epoch e (0-based) runs at
  lr * decay ** ((e + 1) // lr_step_epochs): the 500th epoch is already halved, the paper's "lr
  halves at the 500th epoch". optax's staircase decay counts completed transitions, so the first
  drop comes one epoch early: lr until epoch lr_step_epochs - 1, then a staircase from lr * decay.
  """
  if cfg.schedule not in _SCHEDULES:
    raise ValueError(f"unknown optim.schedule {cfg.schedule!r}; choose {_choices(SCHEDULES)}")
  return _SCHEDULES[cfg.schedule](cfg, steps_per_epoch)


def make_optimizer(cfg, steps_per_epoch: int = 1) -> optax.GradientTransformation:
  """optax transform from `config.optim` (fields: name, lr, momentum, weight_decay, schedule,
  lr_decay, lr_step_epochs)."""
  lr = make_schedule(cfg, steps_per_epoch)
  if cfg.name not in _OPTIMIZERS:
    raise ValueError(f"unknown optim.name {cfg.name!r}; choose {_choices(OPTIMIZERS)}")
  opt = _OPTIMIZERS[cfg.name](cfg, lr)
  if cfg.weight_decay:
    opt = optax.chain(optax.add_decayed_weights(cfg.weight_decay), opt)
  return opt
