"""中文（简体）: the traveller status page (the kiosk's languages)."""

MESSAGES = {
    'Skip to main content':
        '跳到主要内容',
    'Language':
        '语言',
    'Tax-free form status':
        '退税单状态',
    'Export deadline':
        '出口截止日期',
    'Form number':
        '单号',
    'Next step':
        '下一步',
    'Check another form':
        '查询其他退税单',
    'Check your tax-free form':
        '查询您的退税单',
    'Enter the form number printed next to the QR code and your last name as in your passport.':
        '请输入印在二维码旁边的单号，以及与护照一致的姓氏。',
    '10 letters and digits, for example NL 7K3Q W9XD':
        '10位字母和数字，例如 NL 7K3Q W9XD',
    'Last name':
        '姓氏',
    'Show status':
        '查询状态',
    'Validate your form at your last EU airport or port, before you check in your luggage.':
        '请在您离开欧盟前的最后一个机场或港口、托运行李之前验证退税单。',
    'Not validated yet':
        '尚未验证',
    'Customs check needed':
        '需要海关检查',
    'Go to the customs desk with your goods, your passport and this form, before you check in your luggage.':
        '请在托运行李之前，携带商品、护照和本退税单前往海关柜台。',
    'Export validated':
        '出口已验证',
    'Export validated for part of your goods':
        '部分商品的出口已验证',
    'Your refund will be paid by {payer}.':
        '您的退税将由 {payer} 支付。',
    'Refund paid':
        '退税已支付',
    'Nothing more to do. Have a good trip!':
        '无需其他操作。祝您旅途愉快！',
    'Export refused by customs':
        '海关拒绝了出口验证',
    'This form cannot be validated any more. Ask the shop if you have questions.':
        '此退税单已无法验证。如有疑问，请联系商店。',
    'Form cancelled by the shop':
        '商店已取消此退税单',
    'This form cannot be used. Ask the shop if you have questions.':
        '此退税单无法使用。如有疑问，请联系商店。',
    'Export deadline passed':
        '出口截止日期已过',
    'This form can no longer be validated.':
        '此退税单已无法验证。',
    'Fill this in.':
        '请填写此项。',
    'This is not a valid form number. Check it on your form.':
        '单号无效，请核对退税单上的号码。',
    'Too many attempts. Wait a minute and try again.':
        '尝试次数过多，请等待一分钟后重试。',
    'We found no form with this number and last name.':
        '未找到与此单号和姓氏匹配的退税单。',
    'This page was open for a long time. Please send it again.':
        '此页面打开时间过长，请重新提交。',
    'Go to the start page':
        '返回首页',
}
