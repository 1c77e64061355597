import sys

words = sys.stdin.readline().split()
print(" ".join(w[:1].upper() + w[1:] for w in words))
