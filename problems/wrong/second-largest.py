# Plausible mistake: takes the second element of the sorted list, ignoring duplicates of the maximum.
n = int(input())
a = sorted(map(int, input().split()))
print(a[-2] if n >= 2 else "NONE")
