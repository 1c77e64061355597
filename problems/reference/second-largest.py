import sys

data = sys.stdin.buffer.read().split()
n = int(data[0])
values = set(map(int, data[1:1 + n]))
if len(values) < 2:
    print("NONE")
else:
    values.remove(max(values))
    print(max(values))
