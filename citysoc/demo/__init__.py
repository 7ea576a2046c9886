"""``citysoc demo``: a generated Ho Chi Minh City (inventory, a week of normal logs in the
collectors' real formats, camera-network pcaps), attack scenarios with ground truth, and
the check that replays them through the real pipeline and reports what caught each."""
from citysoc.demo.city import City, build_city
from citysoc.demo.run import DemoRun, DemoWorld, build_world, run_offline
from citysoc.demo.scenarios import Scenario, build_scenarios

__all__ = ["City", "build_city", "Scenario", "build_scenarios", "DemoWorld", "DemoRun", "build_world", "run_offline"]
