# Plausible mistake: the classic "total - minimum subarray" trick without the all-negative case,
# where it returns 0 (the empty subarray).
class Solution:
    def maxCircularSum(self, nums: list[int]) -> int:
        best = cur_max = nums[0]
        worst = cur_min = nums[0]
        for x in nums[1:]:
            cur_max = max(x, cur_max + x)
            best = max(best, cur_max)
            cur_min = min(x, cur_min + x)
            worst = min(worst, cur_min)
        return max(best, sum(nums) - worst)
