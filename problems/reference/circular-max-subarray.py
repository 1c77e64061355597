class Solution:
    def maxCircularSum(self, nums: list[int]) -> int:
        best = cur_max = nums[0]
        worst = cur_min = nums[0]
        total = nums[0]
        for x in nums[1:]:
            cur_max = x if cur_max < 0 else cur_max + x
            if cur_max > best:
                best = cur_max
            cur_min = x if cur_min > 0 else cur_min + x
            if cur_min < worst:
                worst = cur_min
            total += x
        if best < 0:
            # every element is negative: the wrap-around candidate would be the empty subarray
            return best
        return max(best, total - worst)
