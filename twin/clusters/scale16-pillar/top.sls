# The 16-machine twin cluster (twin/clusters/scale16.yaml).
base:
  '*':
    - cluster
