import sys

lines = sys.stdin.read().split("\n")
n = int(lines[0])
rows = []
for line in lines[1:1 + n]:
    name, score = line.split()
    rows.append((int(score), name))
rows.sort(reverse=True)  # score high to low, equal scores by name Z-A
print("\n".join(f"{name} {score}" for score, name in rows))
