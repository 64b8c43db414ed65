# Every minion gets the whole cluster description: the map picks its own
# node entry by minion id.
base:
  '*':
    - cluster
