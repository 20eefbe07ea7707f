/* The Vulkan entry points the backend uses, resolved at run time from
 * libvulkan.so.1 (dlopen), so one binary runs with and without Vulkan. One
 * process-wide instance is created on first use and kept for the life of the
 * process (drivers may not support unloading after use). */
#ifndef QE_VK_LOADER_H
#define QE_VK_LOADER_H

#define VK_NO_PROTOTYPES
#include <vulkan/vulkan.h>

/* The entry points, a few per row (clang-format would fold them into a ragged block). */
/* clang-format off */
#define QE_VK_FUNCS(X)                                                                          \
    X(vkEnumeratePhysicalDevices) X(vkGetPhysicalDeviceProperties)                              \
    X(vkGetPhysicalDeviceMemoryProperties) X(vkGetPhysicalDeviceQueueFamilyProperties)          \
    X(vkCreateDevice) X(vkDestroyDevice) X(vkGetDeviceQueue) X(vkCreateBuffer)                  \
    X(vkDestroyBuffer) X(vkGetBufferMemoryRequirements) X(vkAllocateMemory) X(vkFreeMemory)     \
    X(vkBindBufferMemory) X(vkMapMemory) X(vkUnmapMemory) X(vkCreateShaderModule)               \
    X(vkDestroyShaderModule) X(vkCreateDescriptorSetLayout) X(vkDestroyDescriptorSetLayout)     \
    X(vkCreatePipelineLayout) X(vkDestroyPipelineLayout) X(vkCreateComputePipelines)            \
    X(vkDestroyPipeline) X(vkCreateDescriptorPool) X(vkDestroyDescriptorPool)                   \
    X(vkResetDescriptorPool) X(vkAllocateDescriptorSets) X(vkUpdateDescriptorSets)              \
    X(vkCreateCommandPool) X(vkDestroyCommandPool) X(vkAllocateCommandBuffers)                  \
    X(vkBeginCommandBuffer) X(vkEndCommandBuffer) X(vkResetCommandBuffer) X(vkCmdBindPipeline)  \
    X(vkCmdBindDescriptorSets) X(vkCmdPushConstants) X(vkCmdDispatch) X(vkCmdPipelineBarrier)   \
    X(vkCmdCopyBuffer) X(vkCreateFence) X(vkDestroyFence) X(vkResetFences)                      \
    X(vkWaitForFences) X(vkQueueSubmit) X(vkDeviceWaitIdle)
/* clang-format on */

typedef struct qe_vk_fns {
#define QE_VK_DECL(name) PFN_##name name;
    QE_VK_FUNCS(QE_VK_DECL)
#undef QE_VK_DECL
    PFN_vkGetPhysicalDeviceProperties2 vkGetPhysicalDeviceProperties2; /* 1.1; may be NULL */
} qe_vk_fns;

/* The process-wide instance and entry points; NULL when there is no loader,
 * no driver, or an entry point is missing (then *why says which). */
const qe_vk_fns *qe_vk_load(VkInstance *instance, const char **why);

#endif
