words = input().split()
best = words[0]
for w in words:
    if len(w) >= len(best):  # >=: a later word of the same length wins
        best = w
print(best)
