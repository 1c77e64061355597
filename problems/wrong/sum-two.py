# Plausible mistake: parsing as float loses precision beyond 2**53 (an overflow-style bug).
a, b = map(float, input().split())
print(int(a + b))
