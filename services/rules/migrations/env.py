from services.rules.adapters.orm import RulesBase
from services.runtime.migrations import run_env

run_env(RulesBase.metadata)
