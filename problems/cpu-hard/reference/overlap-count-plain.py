import sys

lines = sys.stdin.read().split("\n")
text = lines[0].strip()
pat = lines[1].strip()
count = 0
for i in range(len(text) - len(pat) + 1):
    if text[i:i + len(pat)] == pat:
        count += 1
print(count)
