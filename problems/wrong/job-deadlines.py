# Too slow: the textbook greedy (most profitable first, latest free slot before its deadline)
# with a linear scan for the slot; correct, but O(n^2) when many deadlines coincide.
class Solution:
    def maxProfit(self, deadlines: list[int], profits: list[int]) -> int:
        n = len(deadlines)
        taken = [False] * (n + 1)
        total = 0
        for p, d in sorted(zip(profits, deadlines), reverse=True):
            t = min(d, n)
            while t > 0 and taken[t]:
                t -= 1
            if t > 0:
                taken[t] = True
                total += p
        return total
