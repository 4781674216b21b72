"""The one native part of smartgroups: the condition evaluator and the cascade (extension.py).

Everything else about the package is in pyproject.toml; setuptools builds this extension on
``pip install`` (a C compiler and Python's headers are needed, as for any C extension).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "smartgroups.core._native",
            ["src/smartgroups/core/_native.c"],
            extra_compile_args=["-Wall", "-Wextra", "-Wno-unused-parameter"],
        )
    ]
)
