"""An independently written solution, used only to check that the checkpoints accept any correct
implementation (tests/test_checkpoint_*.py). Modules are added one checkpoint at a time; nothing is
imported here so that a missing module never breaks another one."""
