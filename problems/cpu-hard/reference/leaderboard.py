import sys

lines = sys.stdin.read().split("\n")
n = int(lines[0])
rows = []
for line in lines[1:1 + n]:
    name, score = line.split()
    rows.append((name, int(score)))
rows.sort(key=lambda r: (-r[1], r[0]))
print("\n".join(f"{name} {score}" for name, score in rows))
