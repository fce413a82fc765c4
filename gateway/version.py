VERSION = "0.1.0"
# Bumped whenever the flow-file state layout changes; readers refuse other versions.
FLOW_FORMAT_VERSION = 1
