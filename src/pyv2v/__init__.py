"""pyv2v: convert physical and foreign virtual machines to run on KVM.

This package root owns only the version string; see DESIGN.md for the layout.
"""

__version__ = "0.1.0"
