# Too slow: for every middle element, counts smaller elements to its left and larger to its right
# by scanning; correct, but O(n^2).
class Solution:
    def countTriplets(self, nums: list[int]) -> int:
        n = len(nums)
        total = 0
        for j in range(1, n - 1):
            v = nums[j]
            smaller = sum(1 for i in range(j) if nums[i] < v)
            larger = sum(1 for k in range(j + 1, n) if nums[k] > v)
            total += smaller * larger
        return total
