"""What `import weightinit` gives, and what it does not pay for."""

import subprocess
import sys


def test_top_level_exports_and_lazy_generator():
    code = (
        "import sys, weightinit\n"
        "assert 'diffusers' not in sys.modules, 'import weightinit pulled in diffusers'\n"
        "from weightinit import CycleGANPair, FarConceptWarning, WeightGenerator, initialize\n"
        "from weightinit.generator.model import WeightGenerator as G\n"
        "assert WeightGenerator is G and issubclass(FarConceptWarning, UserWarning)\n"
        "assert set(weightinit.__all__) >= {'initialize', 'CycleGANPair', 'WeightGenerator', 'FarConceptWarning'}\n"
        "try:\n    weightinit.not_a_thing\nexcept AttributeError as e:\n    assert 'not_a_thing' in str(e)\nelse:\n    raise SystemExit('no AttributeError')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
